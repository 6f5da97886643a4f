from __future__ import annotations

import dataclasses

import pytest

from similarity.errors import ConfigError, StoreError
from similarity.store import open_store
from similarity.store.local import LocalStore

from .helpers import make_products
from .store_contract import StoreContract


class TestMemoryStore(StoreContract):
    def make_store(self):
        return open_store("memory://")


class TestSqliteStore(StoreContract):
    @pytest.fixture(autouse=True)
    def _tmp(self, tmp_path):
        self.path = tmp_path / "catalog.db"

    def make_store(self):
        return open_store(f"sqlite:///{self.path}")

    def test_persists_across_reopen_in_wal_mode(self):
        store = self.make_store()
        store.upsert(make_products(3))
        assert store._query("PRAGMA journal_mode")[0][0] == "wal"
        store.close()
        again = LocalStore(self.path)
        assert again.count() == 3 and again.integrity_ok()
        again.close()

    def test_second_connection_sees_writes(self):
        writer, reader = self.make_store(), self.make_store()
        version = reader.version()
        writer.upsert(make_products(2))
        assert reader.version() != version and reader.count() == 2


def test_unknown_scheme_lists_valid_ones():
    with pytest.raises(ConfigError, match=r"sqlite://.*memory://.*mongodb://"):
        open_store("redis://localhost")


def test_not_a_database_is_a_store_error(tmp_path):
    bogus = tmp_path / "bogus.db"
    bogus.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="Cannot open"):
        open_store(f"sqlite:///{bogus}")


def test_a_refused_batch_leaves_no_transaction_open_and_the_next_write_works():
    store = LocalStore()
    products = make_products(3)
    broken = dataclasses.replace(products[1], embedding=None)
    with pytest.raises(StoreError, match="no embedding"):
        store.upsert([products[0], broken])
    assert store.count() == 0  # nothing of the refused batch was kept
    assert store.upsert(products).added == 3 and store.count() == 3
