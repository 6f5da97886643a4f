"""Patching a ``VectorIndex`` snapshot: the next snapshot from a change, and compaction.

``patched`` appends the changed rows and masks replaced and removed ones, sharing the snapshot's buffers
(``rows.py``), so an update costs the size of the change; ``compacted`` copies the live rows into a new
lineage. Both work on the snapshot's buffers directly: they are ``VectorIndex``'s own, kept apart for size.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np

from .columns import codes_of, name_rank, postings_of
from .exact import VectorIndex
from .rows import Buffer, live_mask

if TYPE_CHECKING:
    from ..store.base import VectorBatch


class StalePatch(Exception):
    """A snapshot other than its lineage's newest was asked for a patch."""


@dataclasses.dataclass
class Patch:
    """A patched snapshot, the rows it appended and the rows it masked (removed or replaced)."""

    index: VectorIndex
    appended: np.ndarray
    killed: np.ndarray


def patched(index: VectorIndex, batch: VectorBatch, removed: Iterable[str] = ()) -> Patch:
    """The next snapshot: ``batch`` rows appended (same-id rows masked), ``removed`` ids masked.

    Only the newest snapshot of a lineage can be patched (its id -> row map is shared);
    an older one raises ``StalePatch`` and the caller reloads.
    """
    lineage = index.lineage
    with lineage.lock:
        if lineage.head is not index:
            raise StalePatch("only the newest snapshot can be patched")
        row_of = lineage.row_of
        upserted = list(dict.fromkeys(batch.ids))
        if len(upserted) != len(batch.ids):
            raise ValueError("a patch names each id once")
        gone = [*(set(removed) - set(upserted)), *upserted]
        killed = np.asarray([row_of[i] for i in gone if i in row_of], np.int64)
        out = _appended(index, batch)
        if len(killed) or index._alive is not None:
            out._alive = live_mask(index._alive, index.rows, killed, len(batch.ids))
        out.live = index.live - len(killed) + len(upserted)
        for id_ in removed:
            row_of.pop(id_, None)
        row_of.update(zip(upserted, range(index.rows, out.rows), strict=True))
        lineage.head = out
    return Patch(out, np.arange(index.rows, out.rows), killed)


def _appended(index: VectorIndex, batch: VectorBatch) -> VectorIndex:
    out = object.__new__(VectorIndex)
    out.__dict__.update(index.__dict__)  # shares buffers, lineage and order; replaced below where changed
    n, k = index.rows, len(batch.ids)
    if not k:
        return out
    out.rows = n + k
    out._matrix = index._matrix.append(n, np.asarray(batch.vectors, dtype=index._matrix.data.dtype))
    out._ids = index._ids.append(n, np.asarray(batch.ids, dtype=object))
    out._prices = index._prices.append(n, batch.price_column())
    out._vocab, out._codes, out._postings = {}, {}, {}
    for attr, values in batch.facets.items():
        vocab = out._vocab[attr] = dict(index._vocab[attr])
        width = index._codes[attr].data.shape[1]
        codes = codes_of(values, vocab, max(width, *(len(v) for v in values)))
        old = index._codes[attr]
        if codes.shape[1] > width or (len(vocab) >= 2**15 and old.data.dtype == np.int16):
            wider = np.full((n, codes.shape[1]), -1, dtype=codes.dtype)
            wider[:, :width] = old.view(n)
            old = Buffer.of(wider)  # a value with more items than any before, or a wider code type
        out._codes[attr] = old.append(n, codes)
        postings = out._postings[attr] = dict(index._postings[attr])
        for value, rows in postings_of(vocab, codes):
            if value in postings:
                buffer, m = postings[value]
                postings[value] = (buffer.append(m, rows + n, slack=False), m + len(rows))
            else:
                postings[value] = (Buffer.of(rows + n, slack=False), len(rows))
        if len(vocab) != len(index._vocab[attr]):
            out._name_rank = {**out._name_rank, attr: name_rank(vocab)}
    out.order = index.order.then(np.arange(n, n + k))
    return out


def compacted(index: VectorIndex) -> tuple[VectorIndex, np.ndarray]:
    """A snapshot of the live rows only (a new lineage) and each old row's new row (-1 = dropped).

    Column-wise numpy copies (codes and vocabularies kept as they are), no per-row Python work."""
    rows = index.live_rows()
    remap = np.full(index.rows, -1, dtype=np.int64)
    remap[rows] = np.arange(len(rows))
    columns = {attr: (dict(vocab), index._codes[attr].view(index.rows)[rows]) for attr, vocab in index._vocab.items()}
    out = object.__new__(VectorIndex)
    matrix = Buffer.gathered(index.matrix, rows)
    order = remap[index.order.rows(index.ids, index.alive)]
    out._setup(index.ids[rows], matrix, columns, order, Buffer.of(index.prices[rows]))
    return out, remap
