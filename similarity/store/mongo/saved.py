"""Saved products in MongoDB: a ``saved`` collection next to the products, one document per (user, product).

A unique index on (user, product_id) makes saving twice a no-op even when two requests race; a second
index on (user, saved_at) serves the newest-first list.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from ..base import SAVED_LIMIT, SavedRecord, saved_limit_error
from .codec import as_utc
from .connection import Connection

log = logging.getLogger(__name__)
COLLECTION = "saved"


class MongoSaved:
    def __init__(self, conn: Connection, collection_name: str = COLLECTION) -> None:
        self.conn, self.collection_name = conn, collection_name
        self._indexed = False

    def _coll(self) -> Any:
        coll = self.conn.collection().database[self.collection_name]
        if not self._indexed:
            self._ensure_indexes(coll)
        return coll

    def _ensure_indexes(self, coll: Any) -> None:
        try:
            coll.create_indexes(
                [
                    IndexModel([("user", ASCENDING), ("product_id", ASCENDING)], unique=True, name="user_product"),
                    IndexModel([("user", ASCENDING), ("saved_at", DESCENDING)], name="user_newest"),
                ]
            )
        except ConnectionFailure:
            raise
        except (PyMongoError, NotImplementedError):
            log.warning("MongoDB at %s did not create the saved-products indexes", self.conn.host)
        self._indexed = True

    def save(self, user: str, product_id: str, note: str, limit: int = SAVED_LIMIT) -> bool:
        with self.conn.guard("save a product"):
            coll = self._coll()
            key = {"user": user, "product_id": product_id}
            if coll.find_one(key, {"_id": 1}) is not None:
                return False
            if coll.count_documents({"user": user}, limit=limit) >= limit:
                raise saved_limit_error(limit)
            now = dt.datetime.now(dt.UTC)
            try:
                result = coll.update_one(key, {"$setOnInsert": {**key, "note": note, "saved_at": now}}, upsert=True)
            except DuplicateKeyError:  # a concurrent save of the same product won
                return False
            return result.upserted_id is not None

    def unsave(self, user: str, product_id: str) -> bool:
        with self.conn.guard("remove a saved product"):
            return self._coll().delete_one({"user": user, "product_id": product_id}).deleted_count > 0

    def set_note(self, user: str, product_id: str, note: str) -> bool:
        with self.conn.guard("change a note"):
            key = {"user": user, "product_id": product_id}
            return self._coll().update_one(key, {"$set": {"note": note}}).matched_count > 0

    def list(self, user: str) -> list[SavedRecord]:
        with self.conn.guard("read saved products"):
            cursor = self._coll().find({"user": user}, {"_id": 1, "product_id": 1, "note": 1, "saved_at": 1})
            docs = list(cursor.sort([("saved_at", DESCENDING), ("_id", DESCENDING)]))
        return [SavedRecord(str(d["product_id"]), str(d.get("note") or ""), _seconds(d.get("saved_at"))) for d in docs]


def _seconds(value: Any) -> float:
    return as_utc(value).timestamp() if isinstance(value, dt.datetime) else 0.0
