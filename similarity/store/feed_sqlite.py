"""The change feed of the SQLite catalog (and ``memory://``): rows stamped with a strictly increasing
``updated_at``, removals kept as tombstones for ``TOMBSTONE_DAYS``.

Used by ``LocalStore``, which holds its lock and a read transaction around ``read`` (one snapshot for the
marker, both id lists and the rows).
"""

from __future__ import annotations

import functools
import json
import sqlite3
import time

import numpy as np

from .base import FACET_ATTRIBUTES, ChangeSet, VectorBatch, price_column

SCHEMA = """
CREATE INDEX IF NOT EXISTS products_updated_at ON products(updated_at);
CREATE TABLE IF NOT EXISTS tombstones (id TEXT PRIMARY KEY, removed_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_removed_at ON tombstones(removed_at);
"""
TOMBSTONE_DAYS = 30  # removals older than this are forgotten; an older marker means a full reload
VECTOR_COLUMNS = "id, embedding, category, brand, colors, tags, price"


def open_feed(db: sqlite3.Connection) -> None:
    db.executescript(SCHEMA)
    # feed_since: tombstones are complete from here on (a catalog made before them has none)
    db.execute("INSERT OR IGNORE INTO meta VALUES ('feed_since', ?)", (repr(time.time()),))
    db.execute("INSERT OR IGNORE INTO meta VALUES ('feed_id', lower(hex(randomblob(8))))")


def _meta(db: sqlite3.Connection, key: str) -> str:
    return db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]


def latest(db: sqlite3.Connection, feed_since: float | None = None) -> float:
    """The newest stamp of any write (index lookups, no scan); ``feed_since`` if the caller has read it."""
    sql = "SELECT (SELECT MAX(updated_at) FROM products), (SELECT MAX(removed_at) FROM tombstones)"
    floor = float(_meta(db, "feed_since")) if feed_since is None else feed_since
    return max([floor, *(float(v) for v in db.execute(sql).fetchone() if v is not None)])


def stamp(db: sqlite3.Connection) -> float:
    # strictly after every earlier write, even with a clock step back: "> marker" never misses a write
    return max(time.time(), latest(db) + 1e-6)


def prune(db: sqlite3.Connection, now: float) -> None:
    cutoff = now - TOMBSTONE_DAYS * 86400
    if db.execute("DELETE FROM tombstones WHERE removed_at < ?", (cutoff,)).rowcount:
        db.execute("UPDATE meta SET value = ? WHERE key = 'feed_since'", (repr(cutoff),))


def read(db: sqlite3.Connection, since: str | None, limit: int | None) -> tuple[ChangeSet, VectorBatch | None]:
    """The changes after ``since`` and, when ``limit`` is given and they name at most that many ids, their rows."""
    feed_id, feed_since = _meta(db, "feed_id"), float(_meta(db, "feed_since"))
    newest = latest(db, feed_since)
    marker = f"{feed_id}:{newest!r}"
    owner, _, stamp_text = (since or "").partition(":")
    try:
        after = float(stamp_text)
    except ValueError:
        return ChangeSet(marker, complete=False), None
    if owner != feed_id or not feed_since <= after <= newest:
        return ChangeSet(marker, complete=False), None  # another catalog's marker, or older than the tombstones
    removed = _ids(db, "SELECT id FROM tombstones WHERE removed_at > ?", after)
    # by the stamp index (no ORDER BY id: SQLite would walk the whole table in id order instead)
    if limit is not None:
        (count,) = db.execute("SELECT COUNT(*) FROM products WHERE updated_at > ?", (after,)).fetchone()
        if count + len(removed) <= limit:  # small: the rows themselves, read in one range scan
            sql = f"SELECT {VECTOR_COLUMNS} FROM products WHERE updated_at > ?"
            batch = vector_batch(sorted(db.execute(sql, (after,)).fetchall(), key=lambda r: r[0]))
            return ChangeSet(marker, tuple(batch.ids), removed), batch
    return ChangeSet(marker, _ids(db, "SELECT id FROM products WHERE updated_at > ?", after), removed), None


def _ids(db: sqlite3.Connection, sql: str, after: float) -> tuple[str, ...]:
    return tuple(sorted(r[0] for r in db.execute(sql, (after,))))


def vector_batch(rows: list[tuple]) -> VectorBatch:
    """Rows of ``VECTOR_COLUMNS`` -> the in-memory index's batch."""
    if not rows:
        return VectorBatch([], np.zeros((0, 0), np.float32), {a: [] for a in FACET_ATTRIBUTES})
    matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
    facets = {
        "category": [(r[2],) if r[2] else () for r in rows],
        "brand": [(r[3],) if r[3] else () for r in rows],
        "colors": [_values(r[4]) for r in rows],
        "tags": [_values(r[5]) for r in rows],
    }
    return VectorBatch([r[0] for r in rows], matrix.copy(), facets, price_column(rows, lambda r: r[6]))


@functools.lru_cache(maxsize=4096)
def _values(text: str) -> tuple[str, ...]:
    # colour and tag lists repeat across a catalog: decode each distinct JSON text once
    return tuple(json.loads(text))
