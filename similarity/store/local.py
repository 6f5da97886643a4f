"""Embedded catalog store: one SQLite file (WAL), one row per product, vectors as float32 BLOBs."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..errors import StoreError
from ..records import Product
from . import feed_sqlite as feed
from .base import (
    CatalogStore,
    ChangeSet,
    UpsertReport,
    VectorBatch,
    check_editable,
)
from .saved_sqlite import SqliteSaved

_SCHEMA = """
CREATE TABLE IF NOT EXISTS products (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    category TEXT NOT NULL DEFAULT 'other',
    subcategory TEXT NOT NULL DEFAULT '',
    brand TEXT,
    colors TEXT NOT NULL DEFAULT '[]',
    tags TEXT NOT NULL DEFAULT '[]',
    target_audience TEXT,
    price REAL,
    description TEXT NOT NULL DEFAULT '',
    thumbnail BLOB,
    image_url TEXT,
    source TEXT NOT NULL DEFAULT '',
    embedding BLOB NOT NULL,
    embedding_model TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS products_category ON products(category);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('version', '0');
"""
_FIELDS = (
    "id", "name", "category", "subcategory", "brand", "colors", "tags", "target_audience", "price",
    "description", "thumbnail", "image_url", "source", "embedding", "embedding_model", "created_at", "updated_at",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO products ({', '.join(_FIELDS)}) VALUES ({', '.join('?' * len(_FIELDS))}) "
    "ON CONFLICT(id) DO UPDATE SET " + ", ".join(f"{f}=excluded.{f}" for f in _FIELDS if f not in ("id", "created_at"))
)
_COLUMNS_NO_VECTOR = ", ".join(f for f in _FIELDS if f != "embedding")
_CHUNK = 500  # keeps IN (...) lists under SQLite's variable limit


class LocalStore(CatalogStore):
    """SQLite catalog. ``path=":memory:"`` gives the throw-away ``memory://`` store used by tests."""

    backend = "sqlite"

    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path == ":memory:":
            self.backend = "memory"
        else:
            Path(self.path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: no corruption on a crash
            self._db.executescript(_SCHEMA)
            feed.open_feed(self._db)
            self.saved = SqliteSaved(self._db, self._lock, self.display_url)  # the saved products (base.py)
        except sqlite3.Error:
            raise StoreError(f"Cannot open the catalog file {self.display_url} (not a SQLite catalog?).") from None

    @property
    def display_url(self) -> str:
        return "memory://" if self.backend == "memory" else f"sqlite:///{self.path}"

    def _query(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"The catalog file {self.display_url} could not be read ({_reason(exc)}).") from None

    def upsert(self, products: Sequence[Product]) -> UpsertReport:
        if not products:
            return UpsertReport()
        with self._lock, self._writing("Could not write to the catalog") as now:
            known = self._existing_locked([p.id for p in products])
            self._db.executemany(_UPSERT, [_row(p, now) for p in products])
            self._db.executemany("DELETE FROM tombstones WHERE id = ?", [(p.id,) for p in products])
            self._bump_locked()
        self.notify_written()
        added = len({p.id for p in products} - known)
        return UpsertReport(added=added, updated=len({p.id for p in products}) - added)

    @contextlib.contextmanager
    def _writing(self, failure: str) -> Iterator[float]:
        """One write transaction (the caller holds the lock), yielding its change-feed stamp; any error rolls
        it back, and an SQLite error becomes ``StoreError("<failure> (<reason>).")``."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            yield feed.stamp(self._db)
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"{failure} ({_reason(exc)}).") from None
            raise

    def _bump_locked(self) -> None:
        self._db.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'version'")

    def get(self, ids: Sequence[str], *, thumbnails: bool = True) -> list[Product]:
        columns = _COLUMNS_NO_VECTOR if thumbnails else _COLUMNS_NO_VECTOR.replace("thumbnail", "NULL")
        found: dict[str, Product] = {}
        for chunk in _chunks(list(ids)):
            sql = f"SELECT {columns} FROM products WHERE id IN ({', '.join('?' * len(chunk))})"
            for row in self._query(sql, chunk):
                found[row[0]] = _product(row)
        return [found[i] for i in ids if i in found]

    def existing(self, ids: Sequence[str]) -> set[str]:
        with self._lock:
            return self._existing_locked(ids)

    def _existing_locked(self, ids: Sequence[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(list(ids)):
            sql = f"SELECT id FROM products WHERE id IN ({', '.join('?' * len(chunk))})"
            out.update(r[0] for r in self._db.execute(sql, chunk))
        return out

    def vector(self, id: str) -> np.ndarray | None:
        rows = self._query("SELECT embedding FROM products WHERE id = ?", (id,))
        return np.frombuffer(rows[0][0], dtype=np.float32).copy() if rows else None

    def count(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM products")[0][0])

    def version(self) -> str:
        return self._query("SELECT value FROM meta WHERE key = 'version'")[0][0]

    def load_vectors(self) -> VectorBatch:
        return feed.vector_batch(self._query(f"SELECT {feed.VECTOR_COLUMNS} FROM products ORDER BY id"))

    def iter_products(self, batch_size: int = 256, *, vectors: bool = True) -> Iterator[list[Product]]:
        columns = _COLUMNS_NO_VECTOR + (", embedding" if vectors else "")
        last = ""
        while True:
            sql = f"SELECT {columns} FROM products WHERE id > ? ORDER BY id LIMIT ?"
            rows = self._query(sql, (last, batch_size))
            if not rows:
                return
            yield [_product(r) for r in rows]
            last = rows[-1][0]

    def embedding_models(self) -> dict[str, int]:
        return dict(self._query("SELECT embedding_model, COUNT(*) FROM products GROUP BY embedding_model"))

    def delete(self, ids: Sequence[str]) -> int:
        removed = 0
        with self._lock, self._writing("Could not remove products from the catalog") as now:
            for chunk in _chunks(list(dict.fromkeys(ids))):
                marks = ", ".join("?" * len(chunk))
                sql = f"INSERT OR REPLACE INTO tombstones SELECT id, ? FROM products WHERE id IN ({marks})"
                self._db.execute(sql, [now, *chunk])  # a tombstone per removed product (change feed)
                removed += self._db.execute(f"DELETE FROM products WHERE id IN ({marks})", chunk).rowcount
            feed.prune(self._db, now)
            self._bump_locked()
        self.notify_written()
        return removed

    # -- change feed (catalog management; the SQL is in feed_sqlite.py) -------------------------------
    def changes(self, since: str | None) -> ChangeSet:
        return self._feed(since, None)[0]

    def changed_rows(self, since: str | None, limit: int) -> tuple[ChangeSet, VectorBatch | None]:
        return self._feed(since, limit)

    def _feed(self, since: str | None, limit: int | None) -> tuple[ChangeSet, VectorBatch | None]:
        with self._lock:
            try:
                self._db.execute("BEGIN")  # one read snapshot (WAL) for the marker, both lists and the rows
                try:
                    return feed.read(self._db, since, limit)
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"The catalog file {self.display_url} could not be read ({_reason(exc)}).") from None

    def edit(self, id: str, fields: dict[str, object]) -> Product | None:
        check_editable(fields)
        values = {k: json.dumps(list(v)) if k in ("colors", "tags") else v for k, v in fields.items()}
        with self._lock, self._writing("Could not write to the catalog") as now:
            sql = "UPDATE products SET " + "".join(f"{k} = ?, " for k in values) + "updated_at = ? WHERE id = ?"
            cursor = self._db.execute(sql, [*values.values(), now, id])
            if cursor.rowcount:
                self._bump_locked()
        if not cursor.rowcount:
            return None
        self.notify_written()
        found = self.get([id])
        return found[0] if found else None

    def ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        # a range on the primary key: no scan
        sql = "SELECT id FROM products WHERE id >= ? AND id < ? ORDER BY id LIMIT ?"
        return [r[0] for r in self._query(sql, (prefix, prefix + "\U0010ffff", limit))]

    def load_vectors_of(self, ids: Sequence[str]) -> VectorBatch:
        rows: list[tuple] = []
        for chunk in _chunks(list(dict.fromkeys(ids))):
            sql = f"SELECT {feed.VECTOR_COLUMNS} FROM products WHERE id IN ({', '.join('?' * len(chunk))}) ORDER BY id"
            rows.extend(self._query(sql, chunk))
        return feed.vector_batch(sorted(rows, key=lambda r: r[0]))

    # -- end of change feed ------------------------------------------------------------------------

    def integrity_ok(self) -> bool:
        return self._query("PRAGMA integrity_check")[0][0] == "ok"

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _row(p: Product, now: float) -> tuple:
    if p.embedding is None:
        raise StoreError(f"Product {p.id[:12]} has no embedding.")
    vector = np.ascontiguousarray(p.embedding, dtype=np.float32).tobytes()
    return (
        p.id, p.name, p.category, p.subcategory, p.brand, json.dumps(list(p.colors)), json.dumps(list(p.tags)),
        p.target_audience, p.price, p.description, p.thumbnail, p.image_url, p.source, vector,
        p.embedding_model, p.created_at or now, now,
    )  # fmt: skip


def _product(row: tuple) -> Product:
    data = dict(zip([f for f in _FIELDS if f != "embedding"] + ["embedding"], row, strict=False))
    embedding = data.pop("embedding", None)
    data["colors"], data["tags"] = tuple(json.loads(data["colors"])), tuple(json.loads(data["tags"]))
    product = Product(**data)
    if embedding is not None:
        product.embedding = np.frombuffer(embedding, dtype=np.float32).copy()
    return product


def _chunks(items: list, size: int = _CHUNK) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _reason(exc: sqlite3.Error) -> str:
    # sqlite messages name no secrets; keep only the first line
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
