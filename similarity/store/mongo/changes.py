"""The change feed of a MongoDB catalog: the indexed ``updated_at`` of products plus a tombstones collection.

Writers in other processes are not serialised (no transactions on a plain collection), so a write can
commit with a stamp just below one a reader has already seen. The feed therefore re-reports the last
``overlap`` seconds of writes every time; applying a change twice is harmless (rows are replaced, removals idempotent).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pymongo import IndexModel, UpdateOne
from pymongo.errors import ConnectionFailure, PyMongoError

from ..base import ChangeSet
from .codec import as_utc, next_timestamp

log = logging.getLogger(__name__)
OVERLAP_SECONDS = 5.0
TOMBSTONE_DAYS = 30  # removals older than this are forgotten; an older marker means a full reload
_HORIZON = "~feed"  # the document holding the time from which tombstones are complete
_PREFIX = "mongo:"


class Tombstones:
    """The ``<collection>_tombstones`` collection: one ``{_id, removed_at}`` per removed product."""

    def __init__(self, products: Any) -> None:
        self.coll = products.database[f"{products.name}_tombstones"]

    def ensure(self, now: dt.datetime) -> None:
        try:
            self.coll.update_one({"_id": _HORIZON}, {"$setOnInsert": {"since": now}}, upsert=True)
            self.coll.create_indexes([IndexModel("removed_at")])
        except ConnectionFailure:
            raise
        except (PyMongoError, NotImplementedError):
            log.info("MongoDB did not prepare the tombstones (read-only?); catalog changes reload the index")

    def record(self, ids: Sequence[str], now: dt.datetime) -> None:
        if ids:
            ops = [UpdateOne({"_id": i}, {"$set": {"removed_at": now}}, upsert=True) for i in ids]
            self.coll.bulk_write(ops, ordered=False)
        cutoff = now - dt.timedelta(days=TOMBSTONE_DAYS)
        if self.coll.delete_many({"removed_at": {"$lt": cutoff}}).deleted_count:
            self.coll.update_one({"_id": _HORIZON}, {"$max": {"since": cutoff}})

    def clear(self, ids: Sequence[str]) -> None:
        """Products stored again are no longer removed."""
        self.coll.delete_many({"_id": {"$in": list(ids)}})

    def latest(self) -> dt.datetime | None:
        doc = self.coll.find_one({"removed_at": {"$exists": True}}, {"removed_at": 1}, sort=[("removed_at", -1)])
        return as_utc(doc["removed_at"]) if doc else None

    def horizon(self) -> dt.datetime | None:
        doc = self.coll.find_one({"_id": _HORIZON})
        return as_utc(doc["since"]) if doc and isinstance(doc.get("since"), dt.datetime) else None


def changes(products: Any, latest_update: dt.datetime | None, since: str | None, overlap: float) -> ChangeSet:
    """Ids written or removed after ``since`` (minus the overlap); the marker is the newest stamp seen."""
    tombstones = Tombstones(products)
    latest_removal, horizon = tombstones.latest(), tombstones.horizon()
    stamps = [t for t in (latest_update, latest_removal, horizon) if t is not None]
    marker = _PREFIX + (max(stamps).isoformat() if stamps else "-")
    after = _parse(since)
    if after is None or horizon is None or after < horizon:
        return ChangeSet(marker, complete=False)  # unknown marker, or older than the tombstones kept
    start = after - dt.timedelta(seconds=overlap)
    # sorted here, not by the server: sorting by _id there could walk the _id index instead of the stamp index
    upserted = sorted(d["_id"] for d in products.find({"updated_at": {"$gt": start}}, {"_id": 1}))
    query = {"removed_at": {"$gt": start}}
    removed = sorted(d["_id"] for d in tombstones.coll.find(query, {"_id": 1}) if d["_id"] != _HORIZON)
    return ChangeSet(marker, tuple(upserted), tuple(removed))


def _parse(marker: str | None) -> dt.datetime | None:
    if not marker or not marker.startswith(_PREFIX) or marker == _PREFIX + "-":
        return None
    try:
        return as_utc(dt.datetime.fromisoformat(marker[len(_PREFIX) :]))
    except ValueError:
        return None


def latest_update(coll: Any) -> dt.datetime | None:
    doc = coll.find_one({}, {"updated_at": 1, "_id": 0}, sort=[("updated_at", -1)])
    value = doc.get("updated_at") if doc else None
    return as_utc(value) if isinstance(value, dt.datetime) else None


def stamp(products: Any, tombstones: Tombstones, clock: Callable[[], float]) -> dt.datetime:
    """A write's time: strictly after every stamp a feed marker can hold (updates, removals, the horizon),
    so a write in the same millisecond as a marker already handed out is still reported after it."""
    stamps = [t for t in (latest_update(products), tombstones.latest(), tombstones.horizon()) if t is not None]
    return next_timestamp(max(stamps) if stamps else None, clock)
