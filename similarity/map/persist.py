"""Where a catalog's layout is kept: files next to a SQLite catalog, a ``map`` collection in MongoDB, or memory.

Each backend writes the data first and a small meta record last (the commit marker), tied to the
store's ``version()``: a restart whose catalog has not changed adopts the saved layout as it is.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..store.base import CatalogStore

log = logging.getLogger(__name__)
FORMAT = 1
_CHUNK = 50_000  # points per MongoDB document (ids + coordinates stay far below the 16 MB limit)


@dataclasses.dataclass
class Layout:
    """Coordinates per product id; ``fitted`` marks rows the method saw (the rest were placed by neighbours)."""

    ids: list[str]
    coords: np.ndarray  # (n, 2) float32
    fitted: np.ndarray  # (n,) bool
    method: str
    catalog_version: str
    fitted_version: str = ""  # the catalog version the method was fitted on (placements since keep it)
    created: float = dataclasses.field(default_factory=time.time)
    fit_count: int = 0  # products in the catalog when the method was fitted
    changes: int = 0  # products added or removed since (placed or dropped without a refit)
    labels: np.ndarray | None = None  # (n,) int32 cluster per row, -1 noise (None: not computed yet)
    clusters: list[dict[str, Any]] | None = None  # [{"id", "name", "x", "y", "size"}] (clusters.py)

    def __post_init__(self) -> None:
        self.coords = np.asarray(self.coords, dtype=np.float32).reshape(-1, 2)
        self.fitted = np.asarray(self.fitted, dtype=bool).reshape(-1)
        self.fitted_version = self.fitted_version or self.catalog_version
        self.fit_count = self.fit_count or len(self.ids)
        self._rows: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def row_of(self) -> dict[str, int]:
        if self._rows is None:
            self._rows = {id_: row for row, id_ in enumerate(self.ids)}
        return self._rows

    def meta(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "method": self.method,
            "catalog_version": self.catalog_version,
            "fitted_version": self.fitted_version,
            "count": len(self),
            "created": self.created,
            "fit_count": self.fit_count,
            "changes": self.changes,
            "clusters": self.clusters,
        }

    @classmethod
    def from_parts(
        cls, meta: dict[str, Any], ids: list[str], coords: np.ndarray, fitted: np.ndarray, labels: Any = None
    ) -> Layout:
        clusters = meta.get("clusters")
        if labels is None or len(labels) != len(ids) or not isinstance(clusters, list):
            labels, clusters = None, None  # saved before clusters existed: computed again
        return cls(
            ids, coords, fitted, meta["method"], meta["catalog_version"], meta["fitted_version"],
            meta["created"], int(meta.get("fit_count", 0)), int(meta.get("changes", 0)),
            None if labels is None else np.asarray(labels, dtype=np.int32), clusters,
        )  # fmt: skip


class LayoutStore(Protocol):
    def load(self) -> Layout | None:
        """The saved layout, or None when there is none or it is partial/unreadable."""

    def save(self, layout: Layout) -> None: ...


class MemoryLayouts:
    """The memory store's layouts: kept in this process only."""

    def __init__(self) -> None:
        self._layout: Layout | None = None

    def load(self) -> Layout | None:
        return self._layout

    def save(self, layout: Layout) -> None:
        self._layout = layout


class FileLayouts:
    """``catalog.db.map.npz`` (ids, coordinates, fitted mask) and ``catalog.db.map.json`` (meta, written last)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.meta_path = self.path.with_suffix(".json")

    def load(self) -> Layout | None:
        try:
            meta = json.loads(self.meta_path.read_text())
            data = self.path.read_bytes()
            if meta.get("format") != FORMAT or meta.get("sha256") != hashlib.sha256(data).hexdigest():
                return None
            with np.load(io.BytesIO(data), allow_pickle=False) as arrays:
                ids = arrays["ids"].tobytes().decode().split("\n") if arrays["ids"].size else []
                coords, fitted = arrays["coords"], arrays["fitted"]
                labels = arrays["labels"] if "labels" in arrays.files else None
            layout = Layout.from_parts(meta, ids, coords, fitted, labels)
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return layout if len(layout.coords) == len(ids) == len(layout.fitted) == meta.get("count") else None

    def save(self, layout: Layout) -> None:
        buffer = io.BytesIO()
        ids = np.frombuffer("\n".join(layout.ids).encode(), dtype=np.uint8)
        extra = {} if layout.labels is None else {"labels": layout.labels.astype(np.int32)}
        np.savez(buffer, ids=ids, coords=layout.coords, fitted=layout.fitted, **extra)
        data = buffer.getvalue()
        _replace(self.path, data)
        meta = {**layout.meta(), "sha256": hashlib.sha256(data).hexdigest()}
        _replace(self.meta_path, json.dumps(meta).encode())


class MongoLayouts:
    """A ``map`` collection next to the products: chunk documents of one generation, then the meta document."""

    def __init__(self, store: Any) -> None:
        self.store = store  # a MongoStore: its connection runs our calls with its error handling
        self.key = store.collection_name

    def _run(self, action: str, fn: Any) -> Any:
        return self.store.conn.run(action, lambda coll: fn(coll.database["map"]))

    def load(self) -> Layout | None:
        def read(maps: Any) -> Layout | None:
            meta = maps.find_one({"_id": f"{self.key}:meta"})
            if not meta or meta.get("format") != FORMAT:
                return None
            ids: list[str] = []
            coords: list[np.ndarray] = []
            fitted: list[np.ndarray] = []
            labels: list[np.ndarray] | None = []
            for doc in maps.find({"generation": meta["generation"], "kind": "chunk"}).sort("part", 1):
                ids.extend(doc["ids"])
                coords.append(np.frombuffer(doc["coords"], dtype=np.float32).reshape(-1, 2))
                fitted.append(np.frombuffer(doc["fitted"], dtype=bool))
                if labels is not None and "labels" in doc:
                    labels.append(np.frombuffer(doc["labels"], dtype=np.int32))
                else:
                    labels = None
            if len(ids) != meta.get("count"):
                return None
            empty = (np.zeros((0, 2), np.float32), np.zeros(0, bool))
            return Layout.from_parts(
                meta,
                ids,
                np.concatenate(coords) if coords else empty[0],
                np.concatenate(fitted) if fitted else empty[1],
                np.concatenate(labels) if labels else None,
            )

        return self._run("read the catalog map", read)

    def save(self, layout: Layout) -> None:
        generation = uuid.uuid4().hex

        def write(maps: Any) -> None:
            for part, start in enumerate(range(0, len(layout), _CHUNK)):
                stop = start + _CHUNK
                maps.insert_one(
                    {
                        "_id": f"{self.key}:{generation}:{part}",
                        "key": self.key,
                        "kind": "chunk",
                        "generation": generation,
                        "part": part,
                        "ids": layout.ids[start:stop],
                        "coords": layout.coords[start:stop].tobytes(),
                        "fitted": layout.fitted[start:stop].tobytes(),
                        **({} if layout.labels is None else {"labels": layout.labels[start:stop].tobytes()}),
                    }
                )
            meta = {**layout.meta(), "generation": generation, "key": self.key, "kind": "meta"}
            maps.replace_one({"_id": f"{self.key}:meta"}, meta, upsert=True)
            maps.delete_many({"key": self.key, "kind": "chunk", "generation": {"$ne": generation}})

        self._run("save the catalog map", write)


def layouts_for(store: CatalogStore) -> LayoutStore:
    """The layout storage that goes with ``store``'s backend."""
    backend = getattr(store, "backend", "")
    if backend == "sqlite" and getattr(store, "path", None):
        db = Path(store.path)  # type: ignore[attr-defined]
        return FileLayouts(db.with_name(db.name + ".map.npz"))
    if backend == "mongodb" and hasattr(store, "conn"):
        return MongoLayouts(store)
    return MemoryLayouts()


def _replace(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
