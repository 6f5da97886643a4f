"""The catalog store contract. Every backend (SQLite, memory, MongoDB) implements it."""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import inspect
import logging
import re
import weakref
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

import numpy as np

from ..errors import LimitError, ModelMismatchError, StoreError
from ..records import FACET_GROUPS, Product
from .ranking import Ranker

log = logging.getLogger(__name__)
FACET_ATTRIBUTES = tuple(FACET_GROUPS.values())


@dataclasses.dataclass
class VectorBatch:
    """Everything the in-memory index needs: ids, an (n, d) float32 matrix and facet values per row."""

    ids: list[str]
    vectors: np.ndarray
    facets: dict[str, list[tuple[str, ...]]]
    prices: np.ndarray | None = None  # float64 per row, NaN = no price (None: no row has one)

    @classmethod
    def from_products(cls, products: Sequence[Product], dim: int = 0) -> VectorBatch:
        vectors = [p.embedding for p in products]
        matrix = np.stack(vectors).astype(np.float32) if vectors else np.zeros((0, dim), np.float32)
        facets = {attr: [p.facet(attr) for p in products] for attr in FACET_ATTRIBUTES}
        return cls([p.id for p in products], np.ascontiguousarray(matrix), facets, price_column(products))

    def price_column(self) -> np.ndarray:
        return np.full(len(self.ids), np.nan) if self.prices is None else np.asarray(self.prices, dtype=np.float64)


def price_column(rows: Sequence[Any], get: Callable[[Any], Any] = lambda p: p.price) -> np.ndarray:
    """Prices of ``rows`` as float64, NaN where there is none."""
    return np.asarray([np.nan if (v := get(r)) is None else float(v) for r in rows], dtype=np.float64)


@dataclasses.dataclass
class UpsertReport:
    added: int = 0
    updated: int = 0

    def __iadd__(self, other: UpsertReport) -> UpsertReport:
        self.added += other.added
        self.updated += other.updated
        return self


# -- saved products: records and the per-user cap (the methods are at the end of CatalogStore) --------
SAVED_LIMIT = 1000  # saved products per user


@dataclasses.dataclass(frozen=True)
class SavedRecord:
    """One saved product of one user: ``saved_at`` in seconds since the epoch."""

    product_id: str
    note: str = ""
    saved_at: float = 0.0


def saved_limit_error(limit: int) -> LimitError:
    return LimitError(f"You have saved {limit} products, the most one account can keep; remove some first.")


# -- change feed and metadata edits (catalog management) ------------------------------------------
# Every store reports what changed since a marker, so the in-memory index is patched instead of reloaded.
EDITABLE_FIELDS = (
    "name", "category", "subcategory", "brand", "colors", "tags", "target_audience", "price", "description",
)  # fmt: skip


@dataclasses.dataclass(frozen=True)
class ChangeSet:
    """What changed since a marker: ids now stored (added or replaced) and ids removed.

    ``marker`` is passed back as ``since`` next time. ``complete=False`` means the store cannot tell
    (unknown or too old a marker): the caller reloads everything. Reporting an id again is harmless.
    """

    marker: str
    upserted_ids: tuple[str, ...] = ()
    removed_ids: tuple[str, ...] = ()
    complete: bool = True

    def __len__(self) -> int:
        return len(self.upserted_ids) + len(self.removed_ids)


class ChangeFeed:
    """Mixin of ``CatalogStore``: defaults that backends override with cheap, precise versions."""

    def changes(self, since: str | None) -> ChangeSet:
        """Changes after ``since`` (None: just the current marker, ``complete=False``)."""
        return ChangeSet(self.version(), complete=False)  # type: ignore[attr-defined]

    def edit(self, id: str, fields: dict[str, Any]) -> Product | None:
        """Replace metadata ``fields`` of one product (never its vector); keeps ``created_at``, moves
        ``updated_at``. Returns the edited product (no embedding), or None when ``id`` is unknown."""
        check_editable(fields)
        found = self.get([id])  # type: ignore[attr-defined]
        vector = self.vector(id)  # type: ignore[attr-defined]
        if not found or vector is None:
            return None
        self.upsert([dataclasses.replace(found[0], **fields, embedding=vector)])  # type: ignore[attr-defined]
        return self.get([id])[0]  # type: ignore[attr-defined]

    def ids_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        """Up to ``limit`` stored ids starting with ``prefix``, in id order."""
        out: list[str] = []
        for batch in self.iter_products(1000, vectors=False):  # type: ignore[attr-defined]
            out.extend(p.id for p in batch if p.id.startswith(prefix))
            if len(out) >= limit:
                break
        return out[:limit]

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every write through this store object, in the writer's thread (a bound
        method is held weakly). Writes by other processes are seen through ``changes`` only."""
        ref = weakref.WeakMethod(callback) if inspect.ismethod(callback) else (lambda: callback)
        self.__dict__.setdefault("_listeners", []).append(ref)

    def notify_written(self) -> None:
        """Run the ``subscribe`` callbacks; one failing is logged, never raised (the write has succeeded)."""
        for ref in list(self.__dict__.get("_listeners", ())):
            callback = ref()
            if callback is None:
                with contextlib.suppress(ValueError):  # another writer's thread may have dropped it first
                    self.__dict__["_listeners"].remove(ref)
                continue
            try:
                callback()
            except Exception:
                log.exception("Updating the catalog index after a write failed; the next search retries")

    def changed_rows(self, since: str | None, limit: int) -> tuple[ChangeSet, VectorBatch | None]:
        """``changes(since)`` and, when it names at most ``limit`` ids, the stored rows of its upserted
        ids (as ``load_vectors_of``); None when the change is incomplete or larger (the caller reloads)."""
        changes = self.changes(since)
        if not changes.complete or len(changes) > limit:
            return changes, None
        return changes, self.load_vectors_of(changes.upserted_ids)

    def load_vectors_of(self, ids: Sequence[str]) -> VectorBatch:
        """Vectors and facet values of ``ids`` that are stored (the rows a change feed names)."""
        products = self.get(ids, thumbnails=False)  # type: ignore[attr-defined]
        for p in products:
            p.embedding = self.vector(p.id)  # type: ignore[attr-defined]
        return VectorBatch.from_products([p for p in products if p.embedding is not None])


def check_editable(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE_FIELDS))
    if unknown:
        raise StoreError(f"Cannot edit {', '.join(unknown)}; editable fields: {', '.join(EDITABLE_FIELDS)}.")


# -- end of change feed -----------------------------------------------------------------------------


class CatalogStore(ChangeFeed, abc.ABC):
    """Catalog persistence. Writes are atomic per ``upsert`` call and idempotent by product id."""

    backend: str = "store"

    @abc.abstractmethod
    def upsert(self, products: Sequence[Product]) -> UpsertReport:
        """Insert or replace products (with embeddings) atomically; keeps ``created_at`` of existing ones."""

    @abc.abstractmethod
    def get(self, ids: Sequence[str], *, thumbnails: bool = True) -> list[Product]:
        """Products for ``ids`` in the given order; unknown ids are left out. No embeddings."""

    @abc.abstractmethod
    def existing(self, ids: Sequence[str]) -> set[str]:
        """The subset of ``ids`` already stored."""

    @abc.abstractmethod
    def vector(self, id: str) -> np.ndarray | None: ...

    @abc.abstractmethod
    def count(self) -> int: ...

    @abc.abstractmethod
    def version(self) -> str:
        """A cheap marker that changes whenever the catalog changes (checked before searches)."""

    @abc.abstractmethod
    def load_vectors(self) -> VectorBatch: ...

    @abc.abstractmethod
    def iter_products(self, batch_size: int = 256, *, vectors: bool = True) -> Iterator[list[Product]]:
        """Every product in id order, in batches (for migration, re-tagging and re-embedding)."""

    @abc.abstractmethod
    def embedding_models(self) -> dict[str, int]:
        """How many products were embedded by each model id."""

    @abc.abstractmethod
    def delete(self, ids: Sequence[str]) -> int: ...

    @property
    @abc.abstractmethod
    def display_url(self) -> str:
        """The store URL with any password masked."""

    def ranker(self) -> Ranker | None:
        """A server-side ranker (e.g. Atlas Vector Search), or None to use the shared index."""
        return None

    def close(self) -> None:
        """Release connections."""

    def check_model(self, model_id: str) -> None:
        """Refuse a catalog whose vectors came from another model than ``model_id``."""
        others = sorted(m for m in self.embedding_models() if m != model_id)
        if others:
            raise ModelMismatchError(
                f"The catalog at {self.display_url} was embedded with {', '.join(others)}, but the configured "
                f"model is {model_id}. Re-embed it with `python -m data_seed --reembed` "
                "or configure the same model."
            )

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "url": self.display_url, "count": self.count()}

    def __enter__(self) -> CatalogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- saved products (per user; see similarity.saved) --------------------------------------------
    # Kept next to the catalog but independent of it: a saved product that leaves the catalog stays saved
    # (shown as "no longer in the catalog") until its user removes it. Each backend sets ``saved`` to its
    # table of saved products (saved_sqlite.py, mongo/saved.py); these methods are the contract callers use.
    saved: SavedTable

    def save_product(self, user: str, product_id: str, note: str = "", *, limit: int = SAVED_LIMIT) -> bool:
        """Save ``product_id`` for ``user``; True if newly saved, False if it already was (a no-op, the
        note unchanged). Raises ``LimitError`` when the user already has ``limit`` saved products."""
        return self.saved.save(user, product_id, note, limit)

    def unsave_product(self, user: str, product_id: str) -> bool:
        """Remove a saved product; True if it was saved."""
        return self.saved.unsave(user, product_id)

    def saved_products(self, user: str) -> list[SavedRecord]:
        """The user's saved products, newest first."""
        return self.saved.list(user)

    def set_saved_note(self, user: str, product_id: str, note: str) -> bool:
        """Replace the note of a saved product; False if it is not saved."""
        return self.saved.set_note(user, product_id, note)


class SavedTable(Protocol):
    """A backend's saved products: what ``CatalogStore``'s saved-product methods hand on to."""

    def save(self, user: str, product_id: str, note: str, limit: int = SAVED_LIMIT) -> bool: ...

    def unsave(self, user: str, product_id: str) -> bool: ...

    def list(self, user: str) -> list[SavedRecord]: ...

    def set_note(self, user: str, product_id: str, note: str) -> bool: ...


_PASSWORD = re.compile(r"(?<=://)([^:/@]+):([^@/]*)@")


def mask_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URLs."""
    return _PASSWORD.sub(lambda m: f"{m.group(1)}:****@", url)
