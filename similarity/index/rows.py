"""Append-only arrays shared by index snapshots (copy-on-write without copying).

A snapshot sees only the prefix ``[:n]`` of a buffer. Appending writes past the end of every
snapshot made so far, so searches on older snapshots never see a half-written row; a buffer that
is full, or that another snapshot already appended to, is copied into a larger one first.
Row numbers never change within a lineage of patched snapshots; removed rows are masked out and
dropped by compaction, which starts a new lineage.
"""

from __future__ import annotations

import bisect
import threading

import numpy as np

SLACK_SHARE = 0.125  # room kept at the end of a buffer, as a share of its rows (1M rows: 125k more)
SLACK_MIN = 1024
_MAP_CHUNK = 50_000  # ids per step while building the id -> row map
_GATHER_CHUNK = 16_384  # rows per step while gathering (32 MB at 512-d float32)


class Buffer:
    """A numpy array with spare capacity; ``filled`` is how far any snapshot has appended."""

    __slots__ = ("data", "filled")

    def __init__(self, data: np.ndarray, filled: int) -> None:
        self.data = data
        self.filled = filled

    @classmethod
    def of(cls, values: np.ndarray, slack: bool = True) -> Buffer:
        return cls(np.empty((0, *values.shape[1:]), values.dtype), 0).append(0, values, slack)

    @classmethod
    def gathered(cls, source: np.ndarray, rows: np.ndarray) -> Buffer:
        """``source[rows]`` written straight into a new buffer (one copy, not a gather and then a copy)."""
        n = len(rows)
        data = np.empty((n + max(SLACK_MIN, int(n * SLACK_SHARE)), *source.shape[1:]), dtype=source.dtype)
        for start in range(0, n, _GATHER_CHUNK):  # in chunks, so a compaction thread lets searches run between them
            stop = min(n, start + _GATHER_CHUNK)
            np.take(source, rows[start:stop], axis=0, out=data[start:stop])
        return cls(data, n)

    def view(self, n: int) -> np.ndarray:
        return self.data[:n]

    def append(self, n: int, values: np.ndarray, slack: bool = True) -> Buffer:
        """This buffer's first ``n`` rows plus ``values``: written in place when that is safe, else a copy."""
        end = n + len(values)
        if self.filled == n and end <= len(self.data) and values.shape[1:] == self.data.shape[1:]:
            self.data[n:end] = values
            self.filled = end
            return self
        room = max(SLACK_MIN, int(end * SLACK_SHARE)) if slack else max(4, end // 2)
        dtype = np.promote_types(self.data.dtype, values.dtype) if len(self.data) else values.dtype
        data = np.empty((end + room, *values.shape[1:]), dtype=dtype)
        data[:n] = self.data[:n]
        data[n:end] = values
        return Buffer(data, end)


def live_mask(previous: Buffer | None, rows: int, killed: np.ndarray, added: int) -> Buffer:
    """The live-row mask after a patch of ``rows`` rows: extended in place when nothing is masked (older
    snapshots see only their prefix), else a copy with ``killed`` cleared (``previous`` None: all were live)."""
    if not len(killed) and previous is not None:
        return previous.append(rows, np.ones(added, dtype=bool))
    mask = np.ones(rows + added, dtype=bool)
    if previous is not None:
        mask[:rows] = previous.view(rows)
    mask[killed] = False
    return Buffer.of(mask)


class Lineage:
    """What patched snapshots of one base share: the live row of each id (mutated by the newest patch only)."""

    def __init__(self, row_of: dict[str, int]) -> None:
        self.row_of = row_of
        self.head: object = None  # the snapshot ``row_of`` describes; only it may be patched in place
        self.lock = threading.Lock()

    @classmethod
    def of(cls, ids: np.ndarray) -> Lineage:
        row_of: dict[str, int] = {}
        for start in range(0, len(ids), _MAP_CHUNK):  # in chunks: a compaction thread lets searches run between
            chunk = ids[start : start + _MAP_CHUNK].tolist()
            row_of.update(zip(chunk, range(start, start + len(chunk)), strict=True))
        return cls(row_of)


class IdOrder:
    """Rows in id order, for browsing: a sorted base plus rows appended since, merged on first use."""

    def __init__(self, base: np.ndarray, pending: np.ndarray | None = None) -> None:
        self.base = base
        self.pending = pending if pending is not None else np.zeros(0, np.int64)
        self._lock = threading.Lock()

    def then(self, appended: np.ndarray) -> IdOrder:
        """The order of a snapshot that appended ``appended`` rows (not merged until needed)."""
        with self._lock:
            return IdOrder(self.base, np.concatenate([self.pending, appended.astype(np.int64)]))

    def rows(self, ids: np.ndarray, alive: np.ndarray | None) -> np.ndarray:
        """Live rows sorted by id (computed once per snapshot)."""
        with self._lock:
            if len(self.pending):
                pending = self.pending[np.argsort(ids[self.pending].astype(str), kind="stable")]
                # few pending rows: binary-search each into the base (dead duplicates sort next to them)
                at = [bisect.bisect_left(self.base, ids[r], key=ids.__getitem__) for r in pending]
                self.base, self.pending = np.insert(self.base, at, pending), self.pending[:0]
            if alive is not None and len(self.base) and not alive[self.base].all():
                self.base = self.base[alive[self.base]]
            return self.base
