"""2-D layouts of embedding matrices: fitters (UMAP, PCA), the sampled fit, placement by neighbours, quality.

Everything here is a pure function of arrays; ``service.py`` decides when and where it runs.
A large catalog is fitted on a sample (``sample_size``) and every other row is placed at the
similarity-weighted mean of its nearest fitted neighbours' coordinates, the same rule that places
new products and queries, so memory stays bounded by the sample plus one block of scores.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol, runtime_checkable

import numpy as np

SAMPLE_SIZE = 50_000  # the most rows a layout is fitted on; the rest are placed by neighbours
PLACE_K = 10  # fitted neighbours that place a point
TEMPERATURE = 0.05  # softmax temperature over cosine scores: the closest neighbours dominate
UMAP_NEIGHBOURS = 15
MIN_UMAP_POINTS = 3 * UMAP_NEIGHBOURS  # below this UMAP's graph is degenerate: PCA instead
_BLOCK_CELLS = 1 << 23  # scores per block of exact placement (32 MB of float32, ~100 MB with the top-k work)
_BLOCK = 4096  # query rows per block of faiss placement
_EXACT_WORK = 4e9  # base rows x query rows above which placement uses a faiss IVF index instead of exact scores


@runtime_checkable
class Fitter(Protocol):
    """Fits 2-D coordinates to an (n, d) float32 matrix of unit vectors."""

    name: str  # the "method" reported by /catalog_map
    min_points: int  # fewer rows than this: the layout falls back to PCA

    def fit(self, vectors: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass(frozen=True)
class PcaFitter:
    name: str = "pca"
    min_points: int = 0

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        return pca_2d(vectors)


@dataclasses.dataclass(frozen=True)
class UmapFitter:
    """umap-learn with its defaults for embeddings (15 neighbours, min_dist 0.1); PCA initialisation
    is fast and stable where spectral initialisation struggles on many small clusters."""

    name: str = "umap"
    min_points: int = MIN_UMAP_POINTS
    n_neighbors: int = UMAP_NEIGHBOURS
    min_dist: float = 0.1
    seed: int | None = None  # a seed makes UMAP single-threaded

    def fit(self, vectors: np.ndarray) -> np.ndarray:
        import umap  # numba, pynndescent: imported only where a layout is fitted

        model = umap.UMAP(
            n_neighbors=min(self.n_neighbors, len(vectors) - 1),
            min_dist=self.min_dist,
            n_components=2,
            metric="euclidean",  # unit vectors: the same neighbours as cosine, cheaper
            init="pca",
            random_state=self.seed,
            low_memory=True,
        )
        return np.asarray(model.fit_transform(np.asarray(vectors, dtype=np.float32)), dtype=np.float32)


def pca_2d(vectors: np.ndarray, *, fit_rows: int = SAMPLE_SIZE, seed: int = 0) -> np.ndarray:
    """The top two principal components (fitted on at most ``fit_rows`` rows, applied to all)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    if n == 0:
        return np.zeros((0, 2), np.float32)
    rows = vectors if n <= fit_rows else vectors[np.sort(np.random.default_rng(seed).choice(n, fit_rows, False))]
    mean = rows.mean(axis=0)
    # the covariance's top eigenvectors: d x d, cheap for any n
    cov = np.cov((rows - mean).T.astype(np.float64)) if len(rows) > 1 else np.zeros((vectors.shape[1],) * 2)
    _, vecs = np.linalg.eigh(np.atleast_2d(cov))
    axes = vecs[:, ::-1][:, :2].astype(np.float32)
    if axes.shape[1] < 2:
        axes = np.pad(axes, ((0, 0), (0, 2 - axes.shape[1])))
    out = np.empty((n, 2), np.float32)
    for start in range(0, n, 65_536):
        out[start : start + 65_536] = (vectors[start : start + 65_536] - mean) @ axes
    return out


def fit_layout(
    vectors: np.ndarray, fitter: Fitter, *, sample_size: int = SAMPLE_SIZE, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, str]:
    """(coordinates (n, 2) scaled into [-1, 1], fitted-row mask, method) for ``vectors``.

    Too few rows for ``fitter`` gives PCA. More than ``sample_size`` rows: the fitter sees a random
    sample and the other rows are placed by their nearest fitted neighbours.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    n = len(vectors)
    fitted = np.zeros(n, dtype=bool)
    if n == 0:
        return np.zeros((0, 2), np.float32), fitted, "pca"
    if n < max(fitter.min_points, 2):
        fitted[:] = True
        return normalise(pca_2d(vectors)), fitted, "pca"
    sample = np.arange(n) if n <= sample_size else np.sort(np.random.default_rng(seed).choice(n, sample_size, False))
    fitted[sample] = True
    coords = np.empty((n, 2), np.float32)
    coords[sample] = fitter.fit(vectors[sample])
    rest = np.flatnonzero(~fitted)
    if len(rest):
        coords[rest] = place_rows(vectors[sample], coords[sample], vectors, rest)
    return normalise(coords), fitted, fitter.name


def normalise(coords: np.ndarray) -> np.ndarray:
    """Centred and scaled so the farthest coordinate is 1 (a stable range for every method)."""
    coords = np.asarray(coords, dtype=np.float32)
    if not len(coords):
        return coords.reshape(0, 2)
    coords = coords - (coords.max(axis=0) + coords.min(axis=0)) / 2
    span = float(np.abs(coords).max())
    return coords / span if span > 0 else coords


def weighted_position(coords: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """The similarity-weighted mean of ``coords`` (softmax of cosine scores at ``TEMPERATURE``); rows = points."""
    scores = np.asarray(scores, dtype=np.float64)
    weights = np.exp((scores - scores.max(axis=-1, keepdims=True)) / TEMPERATURE)
    weights /= weights.sum(axis=-1, keepdims=True)
    return np.einsum("...k,...kc->...c", weights, np.asarray(coords, dtype=np.float64)).astype(np.float32)


def place_rows(
    base_vectors: np.ndarray, base_coords: np.ndarray, vectors: np.ndarray, rows: np.ndarray, k: int = PLACE_K
) -> np.ndarray:
    """Coordinates for ``vectors[rows]``: the weighted mean of their ``k`` nearest base points."""
    k = min(k, len(base_vectors))
    out = np.empty((len(rows), 2), np.float32)
    if not len(rows):
        return out
    if k == 0:
        out[:] = 0.0
        return out
    search = _ivf_search(base_vectors, k) if len(base_vectors) * len(rows) > _EXACT_WORK else None
    step = _BLOCK if search is not None else max(16, _BLOCK_CELLS // len(base_vectors))
    for start in range(0, len(rows), step):
        block = np.ascontiguousarray(vectors[rows[start : start + step]], dtype=np.float32)
        if search is not None:
            scores, nearest = search(block)
        else:
            scores, nearest = top_k(block @ base_vectors.T, k)
        out[start : start + len(block)] = weighted_position(base_coords[nearest], scores)
    return out


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` highest scores and their columns (unordered)."""
    k = min(k, scores.shape[1])
    cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    return np.take_along_axis(scores, cols, axis=1), cols


def _ivf_search(base: np.ndarray, k: int):
    """An inverted-file index over ``base`` (inner product): ~1/30 of the exact work at 50k base rows."""
    import faiss

    base = np.ascontiguousarray(base, dtype=np.float32)
    nlist = max(16, int(4 * np.sqrt(len(base))))
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(base.shape[1]), base.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    index.train(base)
    index.add(base)
    index.nprobe = 24

    def search(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores, nearest = index.search(block, k)
        missing = nearest < 0  # a probe that found fewer than k: repeat the best neighbour
        if missing.any():
            nearest = np.where(missing, nearest[:, :1], nearest)
            scores = np.where(missing, scores[:, :1], scores)
        return scores, nearest

    return search


def neighbourhood_preservation(
    high: np.ndarray,
    low: np.ndarray,
    k: int = 10,
    *,
    sample: int | None = 2000,
    seed: int = 0,
    among: np.ndarray | None = None,
) -> float:
    """Mean share of each point's ``k`` nearest neighbours in the embedding space (cosine) that are also
    among its ``k`` nearest in the 2-D layout (Euclidean); averaged over ``sample`` random points (None: all)
    drawn from ``among`` (row numbers; default every row). Neighbours are always searched among all rows."""
    high = np.asarray(high, dtype=np.float32)
    high = high / np.maximum(np.linalg.norm(high, axis=1, keepdims=True), 1e-12)  # cosine
    low = np.asarray(low, dtype=np.float32)
    n = len(high)
    if n <= k:
        raise ValueError(f"neighbourhood preservation needs more than k={k} points, got {n}")
    pool = np.arange(n) if among is None else np.asarray(among, dtype=np.int64)
    rows = pool if sample is None or sample >= len(pool) else np.random.default_rng(seed).choice(pool, sample, False)
    squared = (low**2).sum(axis=1)
    total = 0.0
    for start in range(0, len(rows), 512):
        block = rows[start : start + 512]
        high_scores = high[block] @ high.T
        low_dist = squared[block, None] - 2 * low[block] @ low.T + squared[None, :]
        high_scores[np.arange(len(block)), block] = -np.inf  # a point is not its own neighbour
        low_dist[np.arange(len(block)), block] = np.inf
        near_high = np.argpartition(-high_scores, k - 1, axis=1)[:, :k]
        near_low = np.argpartition(low_dist, k - 1, axis=1)[:, :k]
        for a, b in zip(near_high, near_low, strict=True):
            total += len(np.intersect1d(a, b, assume_unique=True)) / k
    return total / len(rows)
