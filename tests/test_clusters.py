"""Named clusters of the map layout: HDBSCAN recovers planted groups, c-TF-IDF names them from their
distinctive terms, and the clusters are computed and persisted with the layout (``/catalog_map``)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from similarity.map import CatalogMap, FileLayouts
from similarity.map.clusters import describe, find_clusters, name_clusters, product_terms
from similarity.records import Product
from similarity.store import open_store

GROUPS = 6


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blobs of unequal sizes around well-separated centres (a circle), labels per point."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, GROUPS, endpoint=False)
    centres = np.stack([np.cos(angles), np.sin(angles)], axis=1) * 10
    weights = np.arange(1, GROUPS + 1) / np.arange(1, GROUPS + 1).sum()
    labels = rng.choice(GROUPS, n, p=weights)
    return (centres[labels] + rng.normal(0, 1.0, (n, 2))).astype(np.float32), labels


@pytest.mark.parametrize("n", [3000, 40_000])  # 40k: HDBSCAN on a sample, the rest by nearest neighbour
def test_clusters_recover_planted_groups(n):
    xy, truth = planted(n)
    labels = find_clusters(xy)
    assert adjusted_rand_score(truth, labels) >= 0.8
    assert (labels < 0).mean() < 0.1
    sizes = np.bincount(labels[labels >= 0])
    assert list(sizes) == sorted(sizes, reverse=True)  # numbered by size


def test_too_few_points_make_no_cluster():
    assert list(find_clusters(np.zeros((3, 2)))) == [-1, -1, -1]
    assert len(find_clusters(np.zeros((0, 2)))) == 0


def products_for(labels: np.ndarray) -> list[Product]:
    """Each group has its own brand, tag and name word; every product shares 'bags' and 'everyday'."""
    words = ["alpine", "harbor", "cobalt", "meadow", "ember", "quartz"]
    out = []
    for i, g in enumerate(labels):
        name = f"{words[g].title()} everyday item {i}"
        out.append(Product(f"{i:08d}", name, category="bags", brand=f"brand{g}", tags=(f"tag{g}", "everyday")))
    return out


def test_names_come_from_each_groups_distinctive_terms():
    xy, truth = planted(2000, seed=1)
    terms = [product_terms(p) for p in products_for(truth)]
    names = name_clusters(truth, terms)
    words = ["alpine", "harbor", "cobalt", "meadow", "ember", "quartz"]
    for g in range(GROUPS):
        assert set(names[g]) == {f"brand{g}", f"tag{g}", words[g]}, names[g]
    clusters = describe(truth, xy, names)
    assert [c.size for c in clusters] == list(np.bincount(truth))
    assert all("Everyday" not in c.name and "Bags" not in c.name for c in clusters)
    centre = clusters[0]
    assert np.hypot(centre.x - xy[truth == 0, 0].mean(), centre.y - xy[truth == 0, 1].mean()) < 0.5


class PlantedFitter:
    """A fitter (the layout seam) whose 2-D layout is the first two vector components (planted groups)."""

    name, min_points = "planted", 0

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        return vectors[:, :2].astype(np.float32)


def test_catalog_map_computes_and_persists_named_clusters(tmp_path):
    xy, truth = planted(1500, seed=2)
    products = products_for(truth)
    for p, (x, y) in zip(products, xy, strict=True):
        p.embedding = np.array([x / 20, y / 20, 0.1, 0.1], np.float32)
        p.embedding_model = "test"
    store = open_store("memory://")
    store.upsert(products)
    layouts = FileLayouts(tmp_path / "catalog.db.map.npz")
    catalog_map = CatalogMap(store, fitter=PlantedFitter(), layouts=layouts)
    data = catalog_map.points()
    clusters = data["clusters"]
    assert len(clusters) == GROUPS and set(clusters[0]) == {"id", "name", "x", "y", "size"}
    by_point = np.array([p["cluster"] for p in data["points"]])
    assert adjusted_rand_score(truth, by_point) >= 0.8
    largest = int(np.argmax(np.bincount(truth)))
    assert f"Brand{largest}" in clusters[0]["name"] and clusters[0]["size"] >= 0.9 * np.sum(truth == largest)
    saved = layouts.load()  # persisted with the layout
    assert saved.clusters == clusters and np.array_equal(saved.labels, by_point)
    again = CatalogMap(store, fitter=PlantedFitter(), layouts=layouts)
    assert again.points()["clusters"] == clusters


def test_a_layout_saved_before_clusters_gets_them(tmp_path):
    xy, truth = planted(600, seed=3)
    products = products_for(truth)
    for p, (x, y) in zip(products, xy, strict=True):
        p.embedding, p.embedding_model = np.array([x / 20, y / 20, 0.1], np.float32), "test"
    store = open_store("memory://")
    store.upsert(products)
    layouts = FileLayouts(tmp_path / "catalog.db.map.npz")
    CatalogMap(store, fitter=PlantedFitter(), layouts=layouts).points()
    old = layouts.load()
    layouts.save(dataclasses.replace(old, labels=None, clusters=None))  # as an older version wrote it
    assert layouts.load().clusters is None
    assert len(CatalogMap(store, fitter=PlantedFitter(), layouts=layouts).points()["clusters"]) == GROUPS
