"""A local stand-in for the Gemini REST API, for tests: loopback only, port 0, daemon thread.

The real ``google-genai`` client is pointed at it through ``HttpOptions(base_url=...)``. Each
request to ``POST /v1beta/models/{model}:generateContent`` gets the next scripted :class:`Reply`
(the last one repeats); requests are recorded so tests can count attempts and inspect bodies.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_STATUS_NAMES = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL"}


@dataclasses.dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict -> JSON; str -> sent as is
    delay_s: float = 0.0

    @classmethod
    def text(cls, text: str, delay_s: float = 0.0) -> Reply:
        """A successful answer whose model text is ``text`` (normally a JSON document)."""
        candidate = {"content": {"parts": [{"text": text}], "role": "model"}, "finishReason": "STOP", "index": 0}
        return cls(200, {"candidates": [candidate], "modelVersion": "stub"}, delay_s)

    @classmethod
    def tags(cls, delay_s: float = 0.0, **fields: Any) -> Reply:
        return cls.text(json.dumps(fields), delay_s)

    @classmethod
    def error(cls, status: int, message: str = "stub error", delay_s: float = 0.0) -> Reply:
        status_name = _STATUS_NAMES.get(status, "UNAVAILABLE")
        return cls(status, {"error": {"code": status, "message": message, "status": status_name}}, delay_s)


@dataclasses.dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: Any


class GeminiStub:
    """``with GeminiStub([Reply.tags(...)]) as stub: GeminiTagger(key, model, base_url=stub.url)``."""

    def __init__(self, replies: list[Reply] | Callable[[int], Reply]) -> None:
        self.replies = replies
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()  # wakes delayed replies at shutdown
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def calls(self) -> int:
        with self._lock:
            return len(self.requests)

    def __enter__(self) -> GeminiStub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _next(self, seen: Seen) -> Reply:
        with self._lock:
            self.requests.append(seen)
            index = len(self.requests) - 1
        if callable(self.replies):
            return self.replies(index)
        return self.replies[min(index, len(self.replies) - 1)]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                reply = stub._next(Seen(self.path, dict(self.headers), body))
                if reply.delay_s and stub._stop.wait(reply.delay_s):
                    return  # shutting down
                data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                payload = data.encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        return Handler
