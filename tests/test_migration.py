"""Catalog migration: SQLite -> MongoDB (mongomock) -> SQLite keeps ids, vectors and metadata."""

from __future__ import annotations

import mongomock
import numpy as np
import pytest

from similarity.errors import ModelMismatchError
from similarity.store import open_store
from similarity.store.migrate import copy_catalog
from similarity.store.mongo import MongoStore

from .helpers import make_products
from .test_store_mongo import patch_mongomock_bulk


@pytest.fixture(autouse=True)
def _mongomock_bulk(monkeypatch):
    patch_mongomock_bulk(monkeypatch)


def snapshot(store):
    """Everything a copy must keep, per id (updated_at is the copy's own write time)."""
    out = {}
    for batch in store.iter_products(batch_size=7):
        for p in batch:
            meta = p.metadata()
            meta.pop("updated_at")
            created = meta.pop("created_at")  # BSON dates hold milliseconds: compared apart, within 2 ms
            out[p.id] = (meta, p.thumbnail, p.embedding.tobytes(), created)
    return out


def test_round_trip_sqlite_mongo_sqlite(tmp_path):
    products = make_products(23)
    products[0].brand, products[1].price, products[2].image_url = None, None, "https://example.com/a.jpg"
    products[3].target_audience, products[4].thumbnail = "women", None
    source = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    source.upsert(products)
    mongo = MongoStore(mongomock.MongoClient(), search="exact")
    back = open_store(f"sqlite:///{tmp_path / 'b.db'}")
    calls = []

    assert copy_catalog(source, mongo, batch_size=5, progress=lambda done, total: calls.append((done, total))) == 23
    assert copy_catalog(mongo, back, batch_size=10) == 23

    assert calls == [(5, 23), (10, 23), (15, 23), (20, 23), (23, 23)]
    original = snapshot(source)
    for copy in (snapshot(mongo), snapshot(back)):
        assert {k: v[:3] for k, v in copy.items()} == {k: v[:3] for k, v in original.items()}
        assert all(abs(copy[k][3] - original[k][3]) < 0.002 for k in original)
    assert sorted(original) == sorted(p.id for p in products)
    assert np.array_equal(back.load_vectors().vectors, source.load_vectors().vectors)
    for store in (source, mongo, back):
        store.close()


def test_copy_is_idempotent():
    source = open_store("memory://")
    source.upsert(make_products(9))
    target = MongoStore(mongomock.MongoClient(), search="exact")
    copy_catalog(source, target, batch_size=4)
    version = target.version()
    assert copy_catalog(source, target, batch_size=4) == 9
    assert target.count() == 9 and target.version() != version  # rewritten, not duplicated


def test_copy_refuses_to_mix_embedding_models():
    source, target = open_store("memory://"), open_store("memory://")
    source.upsert(make_products(3, model="ViT-B-32/openai"))
    target.upsert(make_products(2, seed=1, model="ViT-B-32/laion2b_s34b_b79k"))
    with pytest.raises(ModelMismatchError, match="empty catalog"):
        copy_catalog(source, target)
    assert target.count() == 2


def test_data_seed_copy_from_command(tmp_path, capsys):
    from data_seed.cli import main

    source = open_store(f"sqlite:///{tmp_path / 'a.db'}")
    source.upsert(make_products(6))
    source.close()
    target_url = f"sqlite:///{tmp_path / 'b.db'}"
    for _ in range(2):  # idempotent: a second run rewrites, never duplicates
        assert main(["--copy-from", f"sqlite:///{tmp_path / 'a.db'}", "--store", target_url, "--no-progress"]) == 0
    assert "copied 6 products" in capsys.readouterr().out
    with open_store(target_url) as target:
        assert target.count() == 6
