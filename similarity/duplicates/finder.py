"""``DuplicateFinder``: CLIP neighbours as candidates, each pair confirmed from the stored thumbnails.

1. Candidates: every product's ``k`` nearest neighbours with cosine >= ``threshold``, found exactly in
   blocks of queries (a block's score matrix stays under ``BLOCK_BYTES``, whatever the catalog size).
2. Confirmation: the pixel similarity of the pair's thumbnails (``pixel.PixelHasher``).
3. Groups: pairs at ``pixel >= pixel_threshold`` joined by union-find are ``near-identical``; the other
   candidate pairs, joined the same way, are ``similar`` (close to CLIP, different pictures). A group's
   figures are the weakest link that joined it (lowest cosine, lowest pixel similarity).
Pairs marked "not a duplicate" (``dismissed``) are left out.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from .pixel import PixelHasher

if TYPE_CHECKING:
    from ..store.base import CatalogStore, VectorBatch

DEFAULT_THRESHOLD = 0.90  # cosine of a candidate pair
PIXEL_THRESHOLD = 0.82  # pixel similarity of a near-identical pair (benchmarks/duplicates.py)
DEFAULT_K = 10  # neighbours looked at per product
HALF_MARGIN = 0.02  # bf16 scores are within ~0.004 of the exact cosine near 1: candidates kept this far below
BLOCK_BYTES = 32 << 20  # one block's query-by-catalog score matrix (its top-k positions take twice that)
THUMB_BATCH = 256  # thumbnails read per store call
NEAR, SIMILAR = "near-identical", "similar"
Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclasses.dataclass
class DuplicateGroup:
    ids: list[str]
    kind: str
    cosine: float
    pixel: float | None

    def to_dict(self) -> dict[str, Any]:
        pixel = None if self.pixel is None else round(self.pixel, 4)
        return {"ids": self.ids, "kind": self.kind, "cosine": round(self.cosine, 4), "pixel": pixel}


@dataclasses.dataclass
class ScanReport:
    groups: list[DuplicateGroup]
    products: int = 0
    candidates: int = 0
    timings_s: dict[str, float] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "groups": [g.to_dict() for g in self.groups],
            "products": self.products,
            "candidates": self.candidates,
            "timings_s": {k: round(v, 3) for k, v in self.timings_s.items()},
        }


@dataclasses.dataclass
class Pairs:
    """Candidate pairs as row indices into a batch, with their cosines (and pixel similarities once confirmed)."""

    rows: np.ndarray  # (m, 2) int64, first < second
    cosine: np.ndarray  # (m,) float32
    pixel: np.ndarray | None = None  # (m,) float32, NaN where a thumbnail is missing


def neighbour_pairs(
    vectors: np.ndarray,
    threshold: float,
    k: int = DEFAULT_K,
    progress: Progress | None = None,
    half: bool | None = None,
) -> Pairs:
    """Each row's ``k`` nearest other rows at cosine >= ``threshold``, as unique pairs (exact, blocked).

    ``half`` (default: where the CPU has bf16 matrix units, AMX or AVX512_BF16) scores the blocks in bf16,
    faster there (about 3x at 100k, benchmarks/duplicates.py), keeps what passes ``threshold - HALF_MARGIN`` and
    scores those pairs again in float32, so the cosines reported and the threshold applied are exact.
    """
    import torch

    n = len(vectors)
    k = max(1, min(k, n - 1)) if n > 1 else 0
    if not k:
        return Pairs(np.zeros((0, 2), np.int64), np.zeros(0, np.float32))
    half = _bf16_fast() if half is None else half
    exact = np.ascontiguousarray(vectors, dtype=np.float32)
    matrix = torch.from_numpy(exact)
    matrix = matrix.to(torch.bfloat16) if half else matrix
    floor = threshold - (HALF_MARGIN if half else 0.0)
    block = max(1, min(n, BLOCK_BYTES // max(1, matrix.element_size() * n)))
    found: list[np.ndarray] = []
    with torch.inference_mode():
        for start in range(0, n, block):
            stop = min(n, start + block)
            sims = matrix[start:stop] @ matrix.T
            sims[torch.arange(stop - start), torch.arange(start, stop)] = -torch.inf  # not a pair with itself
            values, top = torch.topk(sims, k, dim=1)
            keep = (values.float() >= floor).numpy()
            rows = np.repeat(np.arange(start, stop), k).reshape(-1, k)[keep]
            found.append(np.stack([rows, top.numpy()[keep]], axis=1))
            if progress is not None:
                progress("candidates", stop, n)
    rows = np.unique(np.sort(np.concatenate(found).astype(np.int64), axis=1), axis=0)
    cosine = np.einsum("ij,ij->i", exact[rows[:, 0]], exact[rows[:, 1]]) if len(rows) else np.zeros(0, np.float32)
    keep = cosine >= threshold
    return Pairs(rows[keep], cosine[keep].astype(np.float32))


def _bf16_fast() -> bool:
    from ..precision import CpuFeatures

    return CpuFeatures().bf16_supported()


class DuplicateFinder:
    """Finds near-duplicate groups in a catalog store; ``dismissed`` holds "not a duplicate" pairs."""

    def __init__(
        self,
        store: CatalogStore,
        *,
        threshold: float = DEFAULT_THRESHOLD,
        pixel_threshold: float = PIXEL_THRESHOLD,
        k: int = DEFAULT_K,
        dismissed: Iterable[tuple[str, str]] = (),
    ) -> None:
        if not -1.0 <= threshold <= 1.0:
            from ..errors import SimilarityError

            raise SimilarityError(f"The cosine threshold must be between -1 and 1, not {threshold}.")
        self.store = store
        self.threshold, self.pixel_threshold, self.k = threshold, pixel_threshold, k
        self.dismissed = {tuple(sorted(p)) for p in dismissed}

    def scan(self, batch: VectorBatch | None = None, progress: Progress | None = None) -> ScanReport:
        """Every group in the catalog (``batch``: its vectors, read from the store when not given)."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        batch = batch if batch is not None else self.store.load_vectors()
        timings["load"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        pairs = neighbour_pairs(batch.vectors, self.threshold, self.k, progress)
        timings["candidates"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        ids = batch.ids
        keep = [i for i, (a, b) in enumerate(pairs.rows) if tuple(sorted((ids[a], ids[b]))) not in self.dismissed]
        pairs = Pairs(pairs.rows[keep], pairs.cosine[keep])
        pairs.pixel = self.confirm(ids, pairs.rows, progress)
        timings["confirm"] = time.perf_counter() - t0
        groups = self.groups(ids, pairs)
        timings["total"] = sum(timings.values())
        return ScanReport(groups, len(ids), len(pairs.rows), timings)

    def confirm(self, ids: list[str], rows: np.ndarray, progress: Progress | None = None) -> np.ndarray:
        """Pixel similarity per pair (NaN where a thumbnail is missing or unreadable)."""
        hasher = PixelHasher()
        needed = list(dict.fromkeys(ids[r] for r in np.unique(rows))) if len(rows) else []
        for start in range(0, len(needed), THUMB_BATCH):
            chunk = needed[start : start + THUMB_BATCH]
            found = {p.id: p.thumbnail for p in self.store.get(chunk, thumbnails=True)}
            for id_ in chunk:
                hasher.add(id_, found.get(id_))
            if progress is not None:
                progress("confirm", min(len(needed), start + THUMB_BATCH), len(needed))
        out = np.full(len(rows), np.nan, np.float32)
        for i, (a, b) in enumerate(rows):
            value = hasher.similarity(ids[a], ids[b])
            if value is not None:
                out[i] = value
        return out

    def groups(self, ids: list[str], pairs: Pairs) -> list[DuplicateGroup]:
        """Near-identical groups, then similar ones; largest first, then closest first."""
        pixel = pairs.pixel if pairs.pixel is not None else np.full(len(pairs.rows), np.nan, np.float32)
        near = np.nan_to_num(pixel, nan=-1.0) >= self.pixel_threshold
        out = _components(ids, pairs.rows[near], pairs.cosine[near], pixel[near], NEAR)
        out += _components(ids, pairs.rows[~near], pairs.cosine[~near], pixel[~near], SIMILAR)
        kinds = {NEAR: 0, SIMILAR: 1}
        return sorted(out, key=lambda g: (kinds[g.kind], -len(g.ids), -g.cosine, g.ids[0]))


def _components(ids: list[str], rows: np.ndarray, cosine: np.ndarray, pixel: np.ndarray, kind: str) -> list:
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in rows:
        ra, rb = find(int(a)), find(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members: dict[int, list[int]] = {}
    for x in list(parent):
        members.setdefault(find(x), []).append(x)
    weakest: dict[int, list[float]] = {}
    for (a, _), c, p in zip(rows, cosine, pixel, strict=True):
        w = weakest.setdefault(find(int(a)), [2.0, 2.0])
        w[0], w[1] = min(w[0], float(c)), min(w[1], float(p)) if not np.isnan(p) else w[1]
    groups = []
    for root, rows_ in members.items():
        cos, pix = weakest[root]
        group_ids = sorted(ids[r] for r in rows_)
        groups.append(DuplicateGroup(group_ids, kind, cos, None if pix > 1.5 else pix))
    return groups
