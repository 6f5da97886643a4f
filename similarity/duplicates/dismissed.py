"""Pairs marked "not a duplicate", kept with the catalog so they are not shown again.

Next to a SQLite catalog: ``catalog.db.not-duplicates.json`` (replaced atomically); MongoDB: a
``not_duplicates`` collection (one document per pair); the memory store: this process only.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ..store.base import CatalogStore

Pair = tuple[str, str]


def pair(a: str, b: str) -> Pair:
    return (a, b) if a <= b else (b, a)


class DismissedPairs(Protocol):
    def load(self) -> set[Pair]: ...

    def add(self, pairs: Iterable[Pair]) -> int:
        """Remember ``pairs``; returns how many were new."""


class MemoryDismissed:
    def __init__(self) -> None:
        self._pairs: set[Pair] = set()
        self._lock = threading.Lock()

    def load(self) -> set[Pair]:
        return set(self._pairs)

    def add(self, pairs: Iterable[Pair]) -> int:
        with self._lock:
            new = {pair(*p) for p in pairs} - self._pairs
            self._pairs |= new
            return len(new)


class FileDismissed(MemoryDismissed):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = Path(path)

    def load(self) -> set[Pair]:
        try:
            data = json.loads(self.path.read_text())
            return {pair(str(a), str(b)) for a, b in data.get("pairs", [])}
        except (OSError, ValueError, TypeError, AttributeError):
            return set()

    def add(self, pairs: Iterable[Pair]) -> int:
        with self._lock:
            current = self.load()
            new = {pair(*p) for p in pairs} - current
            if new:
                tmp = self.path.with_name(self.path.name + ".tmp")
                tmp.write_text(json.dumps({"pairs": sorted(current | new)}))
                os.replace(tmp, self.path)
            return len(new)


class MongoDismissed:
    def __init__(self, store: Any) -> None:
        self.store = store
        self.key = store.collection_name

    def _run(self, action: str, fn: Any) -> Any:
        return self.store.conn.run(action, lambda coll: fn(coll.database["not_duplicates"]))

    def load(self) -> set[Pair]:
        docs = self._run("read the not-duplicate pairs", lambda c: list(c.find({"key": self.key})))
        return {pair(d["a"], d["b"]) for d in docs}

    def add(self, pairs: Iterable[Pair]) -> int:
        def write(c: Any) -> int:
            new = 0
            for a, b in {pair(*p) for p in pairs}:
                doc = {"_id": f"{self.key}:{a}:{b}", "key": self.key, "a": a, "b": b}
                new += c.replace_one({"_id": doc["_id"]}, doc, upsert=True).upserted_id is not None
            return new

        return self._run("remember not-duplicate pairs", write)


def dismissed_for(store: CatalogStore) -> DismissedPairs:
    """The not-duplicate storage that goes with ``store``'s backend (where its map layout is kept too)."""
    db = getattr(store, "path", None) if getattr(store, "backend", "") == "sqlite" else None
    if db:
        return FileDismissed(Path(db).with_name(Path(db).name + ".not-duplicates.json"))
    if getattr(store, "backend", "") == "mongodb" and hasattr(store, "conn"):
        return MongoDismissed(store)
    return _memory_for(store)


def _memory_for(store: Any) -> MemoryDismissed:
    # one per store object, so a memory catalog's handlers and finder share it
    found = store.__dict__.get("_not_duplicates")
    if found is None:
        found = store.__dict__["_not_duplicates"] = MemoryDismissed()
    return found
