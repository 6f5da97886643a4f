"""``python -m similarity remove|edit``, run as users run them (subprocesses against a SQLite catalog)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from similarity.store.local import LocalStore

from .helpers import TINY_ENV, make_products

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str, store: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **TINY_ENV, "SIMILARITY_STORE": store}
    return subprocess.run(
        [sys.executable, "-m", "similarity", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def catalog(tmp_path):
    path = tmp_path / "c.db"
    products = make_products(20)  # ids 000…00 to 000…13: "0" * 62 + "1" is a prefix of four of them
    products.append(dataclasses.replace(products[0], id="beef" + "1" * 60, name="Beef"))  # "be" is unique
    with LocalStore(path) as store:
        store.upsert(products)
    return f"sqlite:///{path}", path, products


def test_edit_by_prefix_changes_metadata_only(catalog):
    url, path, products = catalog
    target = products[5]
    with LocalStore(path) as store:
        before = store.get([target.id])[0]
    done = run("edit", target.id, "--brand", "Nike", "--category", "Bags",
               "--add-tag", "Summer", "--remove-tag", "leather", "--colors", "gray,navy", "--price", "19.9",
               "--json", store=url)  # fmt: skip
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["id"] == target.id and data["changed"] == ["brand", "category", "colors", "price", "tags"]
    with LocalStore(path) as store:
        after = store.get([target.id])[0]
        assert (after.brand, after.category, after.colors, after.tags, after.price) == (
            "nike", "bags", ("grey", "navy"), ("summer",), 19.9,
        )  # fmt: skip
        assert after.name == before.name and after.created_at == before.created_at
        assert after.updated_at > before.updated_at
        assert np.array_equal(store.vector(target.id), target.embedding)

    short = run("edit", "be", "--name", "Trail runner", store=url)  # a unique prefix
    assert short.returncode == 0 and "edited" in short.stdout and "changed: name" in short.stdout
    with LocalStore(path) as store:
        assert store.get(["beef" + "1" * 60])[0].name == "Trail runner"


def test_an_invalid_category_is_an_error_and_changes_nothing(catalog):
    url, path, products = catalog
    done = run("edit", products[2].id, "--category", "furniture", "--name", "x", store=url)
    assert done.returncode == 1 and "Unknown category 'furniture'" in done.stderr and "Traceback" not in done.stderr
    with LocalStore(path) as store:
        assert store.get([products[2].id])[0].name == products[2].name


def test_remove_several_and_report_them(catalog):
    url, path, products = catalog
    done = run("remove", products[3].id, products[7].id, store=url)
    assert done.returncode == 0, done.stderr
    assert "removed 2 products" in done.stdout and products[3].id in done.stdout and "Product 7" in done.stdout
    with LocalStore(path) as store:
        assert store.count() == 19 and not store.existing([products[3].id, products[7].id])
    as_json = json.loads(run("remove", products[4].id, "--json", store=url).stdout)
    assert as_json == {"removed": [products[4].id], "count": 1, "requested": [products[4].id]}


def test_an_unknown_id_changes_nothing_and_says_so(catalog):
    url, path, products = catalog
    done = run("remove", products[1].id, "abcdef", store=url)
    assert done.returncode == 1 and "No product has an id starting with 'abcdef'" in done.stderr
    assert "Nothing changed" in done.stderr
    edit = run("edit", "f" * 64, "--name", "x", "--json", store=url)
    assert edit.returncode == 1 and "No product" in json.loads(edit.stdout)["error"]
    with LocalStore(path) as store:
        assert store.count() == 21


def test_an_ambiguous_prefix_lists_the_candidates_and_changes_nothing(catalog):
    url, path, products = catalog
    prefix = "0" * 62 + "1"
    done = run("remove", prefix, store=url)
    assert done.returncode == 1 and f"'{prefix}' matches 4 products" in done.stderr
    for p in products[16:20]:
        assert p.id in done.stderr and p.name in done.stderr
    listed = json.loads(run("edit", prefix, "--name", "x", "--json", store=url).stdout)
    assert [c["id"] for c in listed["candidates"]] == [p.id for p in products[16:20]]
    with LocalStore(path) as store:
        assert store.count() == 21 and all(p.name.startswith("Product") for p in store.get([products[16].id]))
