"""Documents <-> products: BSON binary float32 vectors, timestamps in whole milliseconds, facet values.

Plain data in, plain data out (no connection), so it is unit-tested as data.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
from bson.binary import VECTOR_SUBTYPE, Binary, BinaryVectorDtype

from ...errors import StoreError
from ...records import Product
from ..base import FACET_ATTRIBUTES, VectorBatch, price_column

_FLOAT32 = BinaryVectorDtype.FLOAT32.value[0]
_UTC = dt.UTC

DOCUMENT_FIELDS = (
    "name", "category", "subcategory", "brand", "colors", "tags", "target_audience", "price",
    "description", "thumbnail", "image_url", "source", "embedding_model",
)  # fmt: skip


def binary_vectors(products: Iterable[Product]) -> dict[str, Binary]:
    out: dict[str, Binary] = {}
    size = None
    for p in products:
        if p.embedding is None:
            raise StoreError(f"Product {p.id[:12]} has no embedding.")
        vec = np.asarray(p.embedding, dtype=np.float32)
        if vec.ndim != 1 or not vec.size or not np.isfinite(vec).all() or (size is not None and vec.size != size):
            raise StoreError(f"Product {p.id[:12]} has an unusable embedding (shape {vec.shape}).")
        size = vec.size
        out[p.id] = Binary.from_vector(vec.tolist(), BinaryVectorDtype.FLOAT32)
    return out


def to_document(p: Product, vector: Binary, now: dt.datetime) -> dict[str, Any]:
    doc = {field: getattr(p, field) for field in DOCUMENT_FIELDS}
    doc.update(colors=list(p.colors), tags=list(p.tags), embedding=vector, updated_at=now)
    doc["thumbnail"] = Binary(p.thumbnail) if p.thumbnail else None
    return doc


def to_product(doc: dict[str, Any], *, vectors: bool = False) -> Product:
    thumbnail = doc.get("thumbnail")
    product = Product(
        id=str(doc["_id"]),
        name=doc.get("name") or "",
        category=doc.get("category") or "other",
        subcategory=doc.get("subcategory") or "",
        brand=doc.get("brand") or None,
        colors=tuple(doc.get("colors") or ()),
        tags=tuple(doc.get("tags") or ()),
        target_audience=doc.get("target_audience") or None,
        price=float(doc["price"]) if doc.get("price") is not None else None,
        description=doc.get("description") or "",
        thumbnail=bytes(thumbnail) if thumbnail else None,
        image_url=doc.get("image_url") or None,
        source=doc.get("source") or "",
        embedding_model=doc.get("embedding_model") or "",
        created_at=epoch(doc.get("created_at")),
        updated_at=epoch(doc.get("updated_at")),
    )
    if vectors and doc.get("embedding") is not None:
        product.embedding = to_vector(doc["embedding"])
    return product


def to_vector(value: Any) -> np.ndarray:
    """BSON float32 vector (fast path), other BSON vectors, raw float32 bytes, or a plain array of numbers."""
    if isinstance(value, Binary) and value.subtype == VECTOR_SUBTYPE:
        raw = bytes(value)
        if raw[:1] and raw[0] == _FLOAT32:
            return np.frombuffer(raw, dtype=np.float32, offset=2).copy()
        return np.asarray(value.as_vector().data, dtype=np.float32)
    if isinstance(value, bytes):
        return np.frombuffer(value, dtype=np.float32).copy()
    return np.asarray(value, dtype=np.float32)


def stack_vectors(vectors: list[np.ndarray]) -> np.ndarray:
    if not vectors:
        return np.zeros((0, 0), np.float32)
    if len({v.shape for v in vectors}) > 1:
        raise StoreError(
            "The catalog holds vectors of different sizes; re-embed it with python -m data_seed --reembed."
        )
    return np.ascontiguousarray(np.stack(vectors), dtype=np.float32)


def facet_tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) for v in value if v)
    return (str(value),) if value else ()


def next_timestamp(latest: dt.datetime | None, clock: Callable[[], float] = time.time) -> dt.datetime:
    """Now, in whole milliseconds (BSON precision), strictly after ``latest`` (the newest stamp a change-feed
    marker can hold), so version() always moves and a write never hides behind a marker already handed out."""
    now = dt.datetime.fromtimestamp(int(clock() * 1000) / 1000, _UTC)
    step = dt.timedelta(milliseconds=1)
    return latest + step if latest is not None and now <= latest else now


def created_at_of(p: Product, now: dt.datetime) -> dt.datetime:
    return dt.datetime.fromtimestamp(p.created_at, _UTC) if p.created_at else now


def as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=_UTC)  # pymongo returns naive UTC by default


def epoch(value: Any) -> float:
    if isinstance(value, dt.datetime):
        return as_utc(value).timestamp()
    return float(value) if isinstance(value, int | float) else 0.0


VECTOR_PROJECTION = {"_id": 1, "embedding": 1, "price": 1, **{attr: 1 for attr in FACET_ATTRIBUTES}}


def vector_batch(docs: Any) -> VectorBatch:
    """Documents read with ``VECTOR_PROJECTION`` -> the rows the in-memory index loads (no vector: skipped)."""
    ids: list[str] = []
    vectors: list[np.ndarray] = []
    facets: dict[str, list[tuple[str, ...]]] = {attr: [] for attr in FACET_ATTRIBUTES}
    prices: list[Any] = []
    for doc in docs:
        if doc.get("embedding") is None:
            continue
        ids.append(doc["_id"])
        prices.append(doc.get("price"))
        vectors.append(to_vector(doc["embedding"]))
        for attr in FACET_ATTRIBUTES:
            facets[attr].append(facet_tuple(doc.get(attr)))
    return VectorBatch(ids, stack_vectors(vectors), facets, price_column(prices, lambda v: v))
