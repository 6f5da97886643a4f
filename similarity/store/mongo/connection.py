"""One MongoDB collection, reached lazily, with every pymongo error turned into a short ``StoreError``.

The message names the host with the password masked; pymongo's own exception text is never shown
(it can contain the connection string).
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

from pymongo.errors import BulkWriteError, ConfigurationError, ConnectionFailure, OperationFailure, PyMongoError

from ...errors import StoreError
from ..base import mask_url

T = TypeVar("T")
TIMEOUT_MS = 5000
AUTH_CODES = (13, 18, 8000)  # Unauthorized, AuthenticationFailed, Atlas AtlasError (bad credentials)


class Connection:
    """The collection behind a store: injected (a client or a collection), or created on first use via
    ``connect()`` so that building a store never touches the network."""

    def __init__(
        self,
        db_name: str,
        collection_name: str,
        *,
        client: Any = None,
        connect: Callable[[], Any] | None = None,
        collection: Any = None,
        url: str | None = None,
    ) -> None:
        if client is None and connect is None and collection is None:
            raise ValueError("MongoStore needs a client, a connect() factory or a collection")
        self.db_name, self.collection_name = db_name, collection_name
        self.url = url
        self.client, self._connect, self._collection = client, connect, collection
        self._owns_client = False
        self._lock = threading.RLock()

    @property
    def display_url(self) -> str:
        return mask_url(self.url) if self.url else f"mongodb://(client)/{self.db_name}.{self.collection_name}"

    @property
    def host(self) -> str:
        return host_of(self.url) if self.url else "the configured MongoDB client"

    def collection(self) -> Any:
        with self._lock:
            if self._collection is None:
                if self.client is None:
                    self.client = self._connect()  # type: ignore[misc]  # may raise; nothing is cached then
                    self._owns_client = True
                self._collection = self.client[self.db_name][self.collection_name]
            return self._collection

    @contextlib.contextmanager
    def guard(self, action: str) -> Iterator[None]:
        """Turn pymongo errors into short StoreErrors that name the host and never the password."""
        try:
            yield
        except PyMongoError as exc:
            raise StoreError(self.message(exc, action)) from None

    def run(self, action: str, fn: Callable[[Any], T]) -> T:
        with self.guard(action):
            return fn(self.collection())

    def message(self, exc: PyMongoError, action: str) -> str:
        where = f"MongoDB at {self.host} ({self.display_url})"
        if isinstance(exc, BulkWriteError):
            errors = exc.details.get("writeErrors", []) if isinstance(exc.details, dict) else []
            return f"{where} rejected {len(errors) or 'some'} product writes; re-run to retry (writes are idempotent)."
        if isinstance(exc, ConnectionFailure):
            return (
                f"Cannot reach {where} to {action}. Check that the server is running and reachable "
                "(on Atlas: the network access list), then try again."
            )
        if isinstance(exc, OperationFailure):
            name = code_name(exc)
            if exc.code in AUTH_CODES or "auth" in name.lower():
                return f"{where} refused the credentials or permissions to {action} ({name})."
            return f"{where} refused to {action} ({name})."
        if isinstance(exc, ConfigurationError):
            return f"The MongoDB URL {self.display_url} cannot be used (check the host name and options)."
        return f"{where} failed to {action} ({type(exc).__name__})."

    def close(self) -> None:
        with self._lock:
            if self._owns_client and self.client is not None:
                self.client.close()
                self.client, self._collection, self._owns_client = None, None, False


def host_of(url: str) -> str:
    """``mongodb+srv://user:pw@cluster0.x.mongodb.net/db?opts`` -> ``cluster0.x.mongodb.net``."""
    rest = url.split("://", 1)[-1].rsplit("@", 1)[-1]
    return re.split(r"[/?]", rest, maxsplit=1)[0] or "localhost"


def mongo_client(url: str) -> Any:
    """A pymongo client with short timeouts (unless the URL sets its own)."""
    from pymongo import MongoClient

    options = {k.lower() for k, _ in parse_qsl(urlsplit(url).query)}
    defaults = {"serverSelectionTimeoutMS": TIMEOUT_MS, "connectTimeoutMS": TIMEOUT_MS, "appname": "similarity"}
    return MongoClient(url, **{k: v for k, v in defaults.items() if k.lower() not in options})


def code_name(exc: OperationFailure) -> str:
    details = exc.details if isinstance(exc.details, dict) else {}
    name = str(details.get("codeName") or "")
    return name if re.fullmatch(r"[A-Za-z]{1,60}", name) else f"code {exc.code}"
