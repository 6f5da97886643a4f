"""Saved products: a user's list (kept by the catalog store) or a guest's (kept in their browser).

The store keeps ``(user, product_id, note, saved_at)``; this module checks what comes in (ids, notes, what
a browser sends back), joins the list with the catalog, and turns it into rows for export. Ranking "more
like my saved products" is ``SearchService.saved_query`` + ``rank``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
import re
from collections.abc import Sequence
from typing import Any

from .errors import LimitError, NotFoundError, SimilarityError
from .normalize import clean_text
from .records import Product, thumbnail_data_url
from .store.base import SAVED_LIMIT, CatalogStore, SavedRecord

BROWSER_LIMIT = 500  # products a guest's browser keeps
NOTE_LIMIT = 200
PRODUCT_ID = re.compile(r"[0-9A-Za-z_.:-]{1,128}")
GONE = "no longer in the catalog"
CSV_FIELDS = ("id", "name", "brand", "category", "subcategory", "colors", "price", "note", "saved_at", "in_catalog")


@dataclasses.dataclass
class SavedEntry:
    """A saved product joined with the catalog: ``product`` is None once it has left the catalog."""

    record: SavedRecord
    product: Product | None

    @property
    def id(self) -> str:
        return self.record.product_id

    @property
    def in_catalog(self) -> bool:
        return self.product is not None

    def to_dict(self, thumbnails: bool = False) -> dict[str, Any]:
        """The usual match fields (no score), plus ``note``, ``saved_at`` (ISO 8601, UTC) and ``in_catalog``."""
        data: dict[str, Any] = {"id": self.id}
        if self.product is not None:
            data.update({k: v for k, v in self.product.metadata().items() if k != "id"})
            if thumbnails:
                data["thumbnail"] = thumbnail_data_url(self.product.thumbnail)
        data.update(note=self.record.note, saved_at=iso_time(self.record.saved_at), in_catalog=self.in_catalog)
        return data


def iso_time(seconds: float) -> str | None:
    if not seconds:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def clean_note(note: object) -> str:
    return clean_text(note, NOTE_LIMIT) if note is not None else ""


def check_product_id(product_id: object) -> str:
    value = product_id.strip() if isinstance(product_id, str) else ""
    if not PRODUCT_ID.fullmatch(value):
        raise SimilarityError("Give the id of a catalog product (product_id).")
    return value


def browser_ids(raw: object) -> list[str]:
    """What a guest's browser sent back (untrusted): well-formed ids only, no repeats, at most BROWSER_LIMIT."""
    if not isinstance(raw, list):
        return []
    ids = [v for v in raw if isinstance(v, str) and PRODUCT_ID.fullmatch(v)]
    return list(dict.fromkeys(ids))[:BROWSER_LIMIT]


class SavedProducts:
    """Saved products over a catalog store; ``user`` is a user key such as ``local:ann`` or ``hf:ann``."""

    def __init__(self, store: CatalogStore, limit: int = SAVED_LIMIT) -> None:
        self.store, self.limit = store, limit

    # -- accounts -----------------------------------------------------------------------------------
    def entries(self, user: str) -> list[SavedEntry]:
        return self._join(self.store.saved_products(user))

    def save(self, user: str, product_id: object, note: object = None) -> bool:
        """True if newly saved; False if it already was. Only catalog products can be saved."""
        pid = self._in_catalog(product_id)
        return self.store.save_product(user, pid, clean_note(note), limit=self.limit)

    def unsave(self, user: str, product_id: object) -> bool:
        return self.store.unsave_product(user, check_product_id(product_id))

    def set_note(self, user: str, product_id: object, note: object) -> bool:
        return self.store.set_saved_note(user, check_product_id(product_id), clean_note(note))

    def saved_ids(self, user: str) -> list[str]:
        return [r.product_id for r in self.store.saved_products(user)]

    def move_from_browser(self, user: str, raw: object) -> tuple[int, list[str]]:
        """Save a guest's browser list into an account (oldest first, so the order is kept).
        Returns how many were added and the ids left in the browser (not in the catalog, or over the cap)."""
        added, left = 0, []
        for pid in reversed(browser_ids(raw)):
            try:
                added += self.save(user, pid)
            except (NotFoundError, LimitError):
                left.insert(0, pid)
        return added, left

    # -- guests (ids in the browser) ------------------------------------------------------------------
    def browser_entries(self, raw: object) -> list[SavedEntry]:
        return self._join([SavedRecord(pid) for pid in browser_ids(raw)])

    def save_in_browser(self, raw: object, product_id: object) -> list[str]:
        pid = self._in_catalog(product_id)
        ids = browser_ids(raw)
        if pid in ids:
            return ids
        if len(ids) >= BROWSER_LIMIT:
            raise LimitError(f"This browser keeps at most {BROWSER_LIMIT} saved products; remove some first.")
        return [pid, *ids]  # newest first

    def unsave_in_browser(self, raw: object, product_id: object) -> list[str]:
        pid = check_product_id(product_id)
        return [i for i in browser_ids(raw) if i != pid]

    # -- shared ---------------------------------------------------------------------------------------
    def _in_catalog(self, product_id: object) -> str:
        pid = check_product_id(product_id)
        if not self.store.existing([pid]):
            raise NotFoundError("That product is no longer in the catalog.")
        return pid

    def _join(self, records: Sequence[SavedRecord]) -> list[SavedEntry]:
        found = {p.id: p for p in self.store.get([r.product_id for r in records])}
        return [SavedEntry(r, found.get(r.product_id)) for r in records]


def export_csv(entries: Sequence[SavedEntry]) -> str:
    return csv_text(CSV_FIELDS, [e.to_dict() for e in entries])


def csv_text(fields: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """Rows as CSV with a header: lists joined by spaces, formula-looking cells quoted."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        flat = {k: " ".join(v) if isinstance(v, list | tuple) else v for k, v in row.items()}
        writer.writerow({k: _csv_safe(v) for k, v in flat.items()})
    return out.getvalue()


def export_json(entries: Sequence[SavedEntry]) -> dict[str, Any]:
    return {"products": [e.to_dict() for e in entries]}


def _csv_safe(value: object) -> object:
    # a cell starting with = + - @ runs as a formula in spreadsheets: quote it
    return f"'{value}" if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value
