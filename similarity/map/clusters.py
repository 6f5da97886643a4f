"""Named clusters of the 2-D layout: HDBSCAN (scikit-learn) on the coordinates, names by class-based TF-IDF.

Finding: HDBSCAN runs on at most ``SAMPLE`` points (a fixed random sample; its cost grows faster than
linearly: ~1 s at 10k, ~10 s at 30k on 2 cores) and every other point takes the label of its nearest
sampled neighbour (a k-d tree), so 100k or 1M points cost about the same as 10k. Noise stays unlabelled.

Naming (BERTopic's c-TF-IDF): each product contributes its terms once (category, subcategory, brand,
tags and name words); a term's weight in a cluster is its share of the cluster's terms times
``log(1 + A / f)``, with ``A`` the average number of terms per cluster and ``f`` the term's frequency
over all clusters, so a term common everywhere ranks low. A name is the cluster's top terms.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..records import Product
    from ..store.base import CatalogStore
    from .persist import Layout

SAMPLE = 10_000  # points HDBSCAN itself sees
MIN_SHARE = 0.01  # a cluster holds at least this share of the points (and at least MIN_SIZE)
MIN_SIZE = 5
NAME_TERMS = 3
_WORD = re.compile(r"[a-z][a-z0-9&'-]{2,}")
STOP = frozenset({
    "the", "and", "for", "with", "from", "this", "that", "new", "set", "pack", "of", "in", "on", "by", "to",
    "a", "an", "or", "mini", "max", "pro", "plus",
})  # fmt: skip


@dataclasses.dataclass
class Cluster:
    id: int
    name: str
    x: float
    y: float
    size: int
    terms: list[str] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "x": round(self.x, 5), "y": round(self.y, 5), "size": self.size}


def find_clusters(coords: np.ndarray, *, sample: int = SAMPLE, seed: int = 0) -> np.ndarray:
    """A cluster label per point (-1: noise), numbered by size (0 = largest)."""
    from scipy.spatial import cKDTree
    from sklearn.cluster import HDBSCAN

    xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    n = len(xy)
    if n < 2 * MIN_SIZE:
        return np.full(n, -1, np.int32)
    rows = np.sort(np.random.default_rng(seed).choice(n, sample, replace=False)) if n > sample else np.arange(n)
    fitted = xy[rows]
    size = max(MIN_SIZE, int(MIN_SHARE * len(fitted)))
    found = HDBSCAN(min_cluster_size=size, min_samples=min(size, 10), copy=True).fit_predict(fitted)
    labels = np.full(n, -1, np.int64)
    labels[rows] = found
    if len(rows) < n:
        rest = np.setdiff1d(np.arange(n), rows, assume_unique=True)
        _, nearest = cKDTree(fitted).query(xy[rest], k=1)
        labels[rest] = found[nearest]
    return _by_size(labels)


def _by_size(labels: np.ndarray) -> np.ndarray:
    out = np.full(len(labels), -1, np.int32)
    kept = labels[labels >= 0]
    if not len(kept):
        return out
    counts = np.bincount(kept)
    order = sorted((c for c in range(len(counts)) if counts[c]), key=lambda c: -counts[c])
    new = np.full(len(counts), -1, np.int32)
    new[order] = np.arange(len(order), dtype=np.int32)
    out[labels >= 0] = new[kept]
    return out


def product_terms(product: Product) -> set[str]:
    """The terms a product brings to its cluster's name (each once)."""
    terms = {product.category, product.subcategory, product.brand or "", *product.tags}
    terms |= {w for w in _WORD.findall((product.name or "").lower()) if w not in STOP}
    return {t.strip().lower() for t in terms if t and t.strip() and t.strip().lower() != "other"}


def name_clusters(labels: np.ndarray, terms: Sequence[Iterable[str]], top: int = NAME_TERMS) -> dict[int, list[str]]:
    """The ``top`` most distinctive terms of each cluster (class-based TF-IDF), in order."""
    per_class: dict[int, Counter] = {}
    for label, product_terms_ in zip(labels, terms, strict=True):
        if label >= 0:
            per_class.setdefault(int(label), Counter()).update(set(product_terms_))
    if not per_class:
        return {}
    overall: Counter = Counter()
    for counts in per_class.values():
        overall.update(counts)
    average = sum(overall.values()) / len(per_class)
    names = {}
    for label, counts in per_class.items():
        total = sum(counts.values()) or 1
        scored = sorted(counts, key=lambda t: (-(counts[t] / total) * np.log1p(average / overall[t]), t))
        names[label] = _distinct(scored, top)
    return names


def _distinct(terms: list[str], top: int) -> list[str]:
    """The first ``top`` terms, skipping one contained in (or containing) a term already taken."""
    out: list[str] = []
    for term in terms:
        if not any(term in t or t in term for t in out):
            out.append(term)
        if len(out) == top:
            break
    return out


def describe(labels: np.ndarray, coords: np.ndarray, names: dict[int, list[str]]) -> list[Cluster]:
    """One ``Cluster`` per label: its name, centre (the median of its points) and size."""
    clusters = []
    for label in range(int(labels.max()) + 1 if len(labels) else 0):
        members = coords[labels == label]
        if not len(members):
            continue
        terms = names.get(label, [])
        name = " · ".join(t.title() if t.islower() else t for t in terms) or f"Cluster {label + 1}"
        x, y = np.median(members, axis=0)
        clusters.append(Cluster(label, name, float(x), float(y), len(members), terms))
    return clusters


def cluster_layout(layout: Layout, store: CatalogStore, page: int = 5000) -> None:
    """Set ``layout.labels`` and ``layout.clusters`` (names from the products' stored metadata)."""
    labels = find_clusters(layout.coords)
    terms: list[set[str]] = []
    for start in range(0, len(layout), page):
        ids = layout.ids[start : start + page]
        found = {p.id: p for p in store.get(ids, thumbnails=False)}
        terms += [product_terms(found[i]) if i in found else set() for i in ids]
    names = name_clusters(labels, terms)
    layout.labels = labels
    layout.clusters = [c.to_dict() for c in describe(labels, layout.coords, names)]
