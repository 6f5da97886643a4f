"""Saved products in the SQLite catalog file (and ``memory://``): a ``saved`` table next to ``products``.

Used by ``LocalStore``, which shares its connection and lock. No foreign key to ``products``: a saved
product that leaves the catalog stays saved until its user removes it.
"""

from __future__ import annotations

import sqlite3
import threading
import time

from ..errors import StoreError
from .base import SAVED_LIMIT, SavedRecord, saved_limit_error

SCHEMA = """
CREATE TABLE IF NOT EXISTS saved (
    user TEXT NOT NULL,
    product_id TEXT NOT NULL,
    note TEXT NOT NULL DEFAULT '',
    saved_at REAL NOT NULL,
    PRIMARY KEY (user, product_id)
);
CREATE INDEX IF NOT EXISTS saved_by_user ON saved(user, saved_at);
"""


class SqliteSaved:
    def __init__(self, db: sqlite3.Connection, lock: threading.RLock, where: str) -> None:
        self._db, self._lock, self._where = db, lock, where
        db.executescript(SCHEMA)

    def save(self, user: str, product_id: str, note: str, limit: int = SAVED_LIMIT) -> bool:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")  # the cap check and the insert see the same rows
                try:
                    known = "SELECT 1 FROM saved WHERE user = ? AND product_id = ?"
                    if self._db.execute(known, (user, product_id)).fetchone():
                        return False
                    count = self._db.execute("SELECT COUNT(*) FROM saved WHERE user = ?", (user,)).fetchone()[0]
                    if count >= limit:
                        raise saved_limit_error(limit)
                    self._db.execute("INSERT INTO saved VALUES (?, ?, ?, ?)", (user, product_id, note, time.time()))
                finally:
                    self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                self._db.execute("ROLLBACK") if self._db.in_transaction else None
                raise StoreError(f"Could not save the product in {self._where} ({_first_line(exc)}).") from None
        return True

    def unsave(self, user: str, product_id: str) -> bool:
        sql = "DELETE FROM saved WHERE user = ? AND product_id = ?"
        return self._write(sql, (user, product_id), "remove the saved product") > 0

    def set_note(self, user: str, product_id: str, note: str) -> bool:
        sql = "UPDATE saved SET note = ? WHERE user = ? AND product_id = ?"
        return self._write(sql, (note, user, product_id), "change the note") > 0

    def list(self, user: str) -> list[SavedRecord]:
        sql = "SELECT product_id, note, saved_at FROM saved WHERE user = ? ORDER BY saved_at DESC, rowid DESC"
        with self._lock:
            try:
                rows = self._db.execute(sql, (user,)).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"Could not read saved products from {self._where} ({_first_line(exc)}).") from None
        return [SavedRecord(r[0], r[1], float(r[2])) for r in rows]

    def _write(self, sql: str, params: tuple, action: str) -> int:
        with self._lock:
            try:
                return self._db.execute(sql, params).rowcount
            except sqlite3.Error as exc:
                raise StoreError(f"Could not {action} in {self._where} ({_first_line(exc)}).") from None


def _first_line(exc: sqlite3.Error) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
