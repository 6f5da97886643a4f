"""Near-duplicates on generated photos: re-uploads (resized, re-encoded, 95% crops, brightness shifts,
small watermarks) of product photos, mixed with other photos of the same generated products."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from similarity.duplicates import NEAR, DuplicateFinder, DuplicateScan, SeedScreen, dismissed_for
from similarity.duplicates.finder import neighbour_pairs
from similarity.ingest import IngestItem, Ingestor
from similarity.store import open_store

from .dup_photos import REUPLOADS, encoded, product_photo, reupload
from .helpers import random_unit_vectors

FAMILIES = 12


def _item(key: str, image) -> IngestItem:
    data = encoded(image)
    return IngestItem(key, lambda: data, {"name": key, "category": "bags"})


def photo_items(families: int = FAMILIES) -> tuple[list[IngestItem], dict[str, int]]:
    """Each family: two different shots (not duplicates) and six re-uploads of the first shot."""
    items, truth = [], {}
    for f in range(families):
        first = product_photo(f, 0)
        items.append(_item(f"f{f}-shot0", first))
        items.append(_item(f"f{f}-shot1", product_photo(f, 1)))
        items += [_item(f"f{f}-{kind}", reupload(first, kind, f * 10 + i)) for i, kind in enumerate(REUPLOADS)]
    return items, truth


@pytest.fixture(scope="module")
def seeded(tiny_embedder):
    store = open_store("memory://")
    items, _ = photo_items()
    report = Ingestor(store, tiny_embedder).run(items)
    keys = {o.id: o.key for o in report.outcomes}
    assert report.added == len(items)
    return store, keys


def _true_pairs(keys: dict[str, str]) -> set[frozenset]:
    by_family: dict[str, list[str]] = {}
    for id_, key in keys.items():
        family, variant = key.split("-", 1)
        if variant != "shot1":  # the second shot is a different photo of the same product
            by_family.setdefault(family, []).append(id_)
    return {frozenset(p) for ids in by_family.values() for p in itertools.combinations(ids, 2)}


def _predicted_pairs(groups) -> set[frozenset]:
    return {frozenset(p) for g in groups if g.kind == NEAR for p in itertools.combinations(g.ids, 2)}


def _precision_recall(predicted: set, truth: set) -> tuple[float, float]:
    hits = len(predicted & truth)
    return hits / max(1, len(predicted)), hits / max(1, len(truth))


def test_near_identical_precision_and_recall_with_random_weights(seeded):
    store, keys = seeded
    # random weights: unrelated pictures reach high cosines, so the candidates are wide and the pixels decide
    report = DuplicateFinder(store, threshold=0.5, k=30).scan()
    precision, recall = _precision_recall(_predicted_pairs(report.groups), _true_pairs(keys))
    assert precision >= 0.95, precision
    assert recall >= 0.95, recall
    for g in report.groups:  # both figures, a kind each
        assert g.kind in ("near-identical", "similar") and -1 <= g.cosine <= 1.0001
        assert g.kind == "similar" or g.pixel >= 0.82
    shots = {id_ for id_, key in keys.items() if key.endswith("shot1")}
    for g in report.groups:  # another photo of the same product is never called near-identical
        if g.kind == NEAR:
            assert not shots & set(g.ids), [keys[i] for i in g.ids]


def test_ideal_vectors_recover_groups_through_the_cosine_threshold():
    vectors = random_unit_vectors(50, 32, seed=3)
    twins = vectors[:10] + 0.02 * random_unit_vectors(10, 32, seed=4)
    all_vectors = np.concatenate([vectors, twins / np.linalg.norm(twins, axis=1, keepdims=True)])
    pairs = neighbour_pairs(all_vectors.astype(np.float32), threshold=0.95, k=3)
    assert {tuple(r) for r in pairs.rows} == {(i, 50 + i) for i in range(10)}
    assert np.all(pairs.cosine >= 0.95)


def test_blocks_give_the_same_pairs(monkeypatch):
    from similarity.duplicates import finder

    vectors = random_unit_vectors(300, 16, seed=5)
    whole = neighbour_pairs(vectors, 0.6, 5)
    monkeypatch.setattr(finder, "BLOCK_BYTES", 4 * 300 * 7)  # blocks of 7 queries
    blocked = neighbour_pairs(vectors, 0.6, 5)
    assert {tuple(r) for r in whole.rows} == {tuple(r) for r in blocked.rows}


def test_bf16_and_float32_scoring_give_the_same_pairs_and_exact_cosines():
    vectors = random_unit_vectors(400, 64, seed=8)
    near = vectors[:40] + 0.15 * random_unit_vectors(40, 64, seed=9)
    vectors = np.concatenate([vectors, near / np.linalg.norm(near, axis=1, keepdims=True)])
    exact, half = neighbour_pairs(vectors, 0.9, 5, half=False), neighbour_pairs(vectors, 0.9, 5, half=True)
    assert len(exact.rows) >= 30
    assert {tuple(r) for r in exact.rows} == {tuple(r) for r in half.rows}
    np.testing.assert_allclose(half.cosine, exact.cosine, atol=1e-5)  # rescored in float32


def test_not_a_duplicate_is_remembered(tmp_path, tiny_embedder):
    store = open_store(f"sqlite:///{tmp_path / 'catalog.db'}")
    first = product_photo(1, 0)
    report = Ingestor(store, tiny_embedder).run([_item("a", first), _item("b", reupload(first, "resized", 1))])
    ids = [o.id for o in report.outcomes]
    scan = DuplicateScan(store)
    assert [g.ids for g in scan.run_now(0.5).groups if g.kind == NEAR] == [sorted(ids)]
    assert scan.dismiss(ids) == 1
    assert scan.report.groups == []
    store.close()
    again = open_store(f"sqlite:///{tmp_path / 'catalog.db'}")  # remembered with the catalog
    assert DuplicateScan(again).run_now(0.5).groups == []
    assert dismissed_for(again).load() == {tuple(sorted(ids))}
    again.close()


def test_background_scan_reports_progress(seeded):
    store, _ = seeded
    scan = DuplicateScan(store)
    assert scan.start(0.5)
    scan.join(60)
    state = scan.state()
    assert state["phase"] == "done" and not state["running"] and state["done"] == state["total"] == store.count()
    assert any(g.kind == NEAR for g in scan.report.groups)


def test_seeding_lists_and_skips_near_duplicates(tiny_embedder):
    store = open_store("memory://")
    originals = [product_photo(f, 0) for f in range(4)]
    Ingestor(store, tiny_embedder).run([_item(f"orig{i}", p) for i, p in enumerate(originals)])
    later = [
        _item("copy0", reupload(originals[0], "watermark", 1)),
        _item("copy2", reupload(originals[2], "crop95", 2)),
    ]
    later.append(_item("other", product_photo(9, 0)))
    later.append(_item("shot", product_photo(1, 1)))  # another photo of a stored product: not a near-duplicate
    report = Ingestor(store, tiny_embedder, screen=SeedScreen(store, threshold=0.5)).run(later)
    notes = {o.key: (o.status, o.reason) for o in report.outcomes}
    assert notes["copy0"][0] == notes["copy2"][0] == "added"
    assert notes["copy0"][1].startswith("near-identical to an existing product")
    assert notes["copy2"][1].startswith("near-identical to an existing product")
    assert notes["other"] == ("added", "") and notes["shot"] == ("added", "")
    more = [
        _item("copy1", reupload(originals[1], "brighter", 3)),
        _item("copy1b", reupload(originals[1], "resized", 4)),
    ]
    skipped = Ingestor(store, tiny_embedder, screen=SeedScreen(store, 0.5), skip_screened=True).run(more)
    assert [o.status for o in skipped.outcomes] == ["skipped", "skipped"]
    assert store.count() == 8


def test_seeding_an_empty_catalog_checks_the_run_against_itself(tiny_embedder):
    store = open_store("memory://")
    first = product_photo(5, 0)
    items = [_item("orig", first), _item("other", product_photo(6, 0))]
    Ingestor(store, tiny_embedder, screen=SeedScreen(store, 0.5), batch_size=2).run(items)
    later = [_item("copy", reupload(first, "reencoded", 1))]
    report = Ingestor(store, tiny_embedder, screen=SeedScreen(store, 0.5)).run(later)
    assert report.outcomes[0].reason.startswith("near-identical to an existing product")


def test_cli_json(tmp_path, tiny_embedder, capsys):
    from similarity.__main__ import main

    url = f"sqlite:///{tmp_path / 'c.db'}"
    store = open_store(url)
    first = product_photo(2, 0)
    Ingestor(store, tiny_embedder).run([_item("a", first), _item("b", reupload(first, "darker", 1))])
    store.close()
    assert main(["--store", url, "duplicates", "--threshold", "0.5", "--json", "--no-progress"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert len(data["groups"]) == 1
    group = data["groups"][0]
    assert group["kind"] == "near-identical" and len(group["ids"]) == 2
    assert group["cosine"] >= 0.5 and group["pixel"] >= 0.82
    assert main(["--store", url, "duplicates", "--threshold", "7"]) != 0  # a bad threshold: a short message


def test_missing_thumbnails_are_never_near_identical():
    from .helpers import make_products

    store = open_store("memory://")
    products = make_products(4, dim=8)
    products[1].embedding = products[0].embedding
    store.upsert(products)  # thumbnails that are not pictures
    groups = DuplicateFinder(store, threshold=0.99).scan().groups
    assert [g.kind for g in groups] == ["similar"] and groups[0].pixel is None


def _one_batch_with_copies(base: int) -> list[IngestItem]:
    """Eight items (a first batch holds eight: ``ingest._batches``): two photos, each followed by re-uploads of
    itself, another photo of the first one's product, and an unrelated photo."""
    a, b = product_photo(base, 0), product_photo(base + 1, 0)
    return [
        _item("a", a),
        _item("other", product_photo(base + 2, 0)),
        _item("a-reencoded", reupload(a, "reencoded", 1)),
        _item("b", b),
        _item("a-resized", reupload(a, "resized", 2)),
        _item("a-shot1", product_photo(base, 1)),  # another photo of a's product: not a near-duplicate
        _item("b-watermark", reupload(b, "watermark", 3)),
        _item("b-darker", reupload(b, "darker", 4)),
    ]


@pytest.mark.parametrize("processes", [0, 2])
def test_copies_within_one_batch_of_an_empty_catalog_are_flagged_the_first_wins(tiny_embedder, processes):
    store = open_store("memory://")
    items = _one_batch_with_copies(20)
    ingest = Ingestor(store, tiny_embedder, batch_size=32, processes=processes, screen=SeedScreen(store, 0.5))
    report = ingest.run(items)
    notes = {o.key: (o.status, o.reason) for o in report.outcomes}
    ids = {o.key: o.id for o in report.outcomes}
    assert report.added == len(items) and store.count() == len(items)  # listed, not skipped
    for key in ("a", "b", "other", "a-shot1"):
        assert notes[key] == ("added", ""), key
    for key in ("a-reencoded", "a-resized", "b-watermark", "b-darker"):
        reason = notes[key][1]
        assert reason.startswith("near-identical to product "), (key, reason)
        assert ids[key[0]][:12] in reason, (key, reason)  # the first occurrence is the one named


@pytest.mark.parametrize("processes", [0, 2])
def test_copies_within_one_batch_are_skipped_like_copies_of_stored_products(tiny_embedder, processes):
    store = open_store("memory://")
    stored = product_photo(30, 0)
    Ingestor(store, tiny_embedder).run([_item("stored", stored)])
    items = _one_batch_with_copies(31)
    items[-1] = _item("stored-copy", reupload(stored, "resized", 5))
    screen = SeedScreen(store, 0.5)
    ingest = Ingestor(store, tiny_embedder, batch_size=32, processes=processes, screen=screen, skip_screened=True)
    report = ingest.run(items)
    status = {o.key: o.status for o in report.outcomes}
    assert [k for k, s in status.items() if s == "skipped"] == [
        "a-reencoded",
        "a-resized",
        "b-watermark",
        "stored-copy",
    ]
    assert report.added == 4 and store.count() == 5
    kept = {o.id for o in report.outcomes if o.status == "added"}
    assert kept == {o.id for o in report.outcomes if o.key in ("a", "b", "other", "a-shot1")}
