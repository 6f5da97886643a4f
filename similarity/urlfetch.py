"""Safe server-side fetching of image URLs: the guard against SSRF, slow servers and endless bodies.

Only http(s) to public addresses, resolved here and connected to exactly the address that was checked
(no DNS rebinding), at most a few redirects (each re-checked), one total timeout, a byte cap and an
``image/*`` content type. Errors are ``ImageError``/``UrlRefusedError`` with messages safe to show.
URL parsing and the public-address check live in ``addresses.py``.
``similarity.images`` re-exports ``UrlGuard``, ``fetch_url`` and ``DEFAULT_GUARD``.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from urllib.parse import urljoin

from .addresses import PRIVATE, Target, host_key, ip_literal, is_public, parse_url
from .errors import HttpStatusError, ImageError, UrlRefusedError

MAX_URL_BYTES = 10 * 1024 * 1024  # the same cap as uploads (images.MAX_UPLOAD_BYTES)


def size_text(nbytes: int) -> str:
    """Human size for messages: "10 MB", "1.5 MB", "64 KB"."""
    mb = nbytes / (1024 * 1024)
    if mb >= 1:
        return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, round(nbytes / 1024))} KB"


_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class UrlGuard:
    timeout: float = 10.0  # total seconds for the whole fetch, redirects included
    max_bytes: int = MAX_URL_BYTES
    max_redirects: int = 3
    # exact "ip:port" / "host:port" entries a caller (a test's own server) allows; default: public only
    allow_hosts: frozenset[str] = frozenset()


DEFAULT_GUARD = UrlGuard()


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return self._end - time.monotonic()

    def remaining(self) -> float:
        left = self.left()
        if left <= 0:
            raise ImageError(f"The URL took too long to answer (the limit is {self.seconds:g} s).")
        return left


def _lookup(host: str, port: int, deadline: _Deadline) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    box: dict[str, list] = {}

    def run() -> None:  # getaddrinfo has no timeout of its own, so it runs where we can stop waiting
        with contextlib.suppress(OSError, UnicodeError):
            box["infos"] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)

    worker = threading.Thread(target=run, name="url-dns", daemon=True)
    worker.start()
    worker.join(deadline.remaining())
    deadline.remaining()
    found: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = []
    for info in box.get("infos", []):
        ip = ipaddress.ip_address(info[4][0])
        if ip not in found:
            found.append(ip)
    if not found:
        raise ImageError("The URL's host name could not be found.")
    return found


def _resolve(target: Target, guard: UrlGuard, deadline: _Deadline) -> list:
    """The checked addresses we will connect to; refuse if ANY of them is not public."""
    literal = ip_literal(target.host)
    addresses = [literal] if literal is not None else _lookup(target.host, target.port, deadline)
    host_allowed = host_key(target.host, target.port) in guard.allow_hosts
    for ip in addresses:
        allowed = host_allowed or host_key(str(ip), target.port) in guard.allow_hosts
        if not allowed and not is_public(ip):
            raise UrlRefusedError(PRIVATE)
    return addresses


@cache
def _tls_context() -> ssl.SSLContext:
    return ssl.create_default_context()


class _Watchdog:
    """Shuts the connection down at the deadline, so a server that drips bytes cannot hold us."""

    def __init__(self, sock: socket.socket, seconds: float) -> None:
        self._sock = sock.dup()  # shutdown() on the duplicate ends the shared connection
        self._timer = threading.Timer(max(seconds, 0.0), self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        self._sock.close()


class _PinnedConnection(http.client.HTTPConnection):
    """HTTP(S) to the address we checked, with the URL's host in Host and in TLS verification."""

    def __init__(self, target: Target, ip: object, deadline: _Deadline) -> None:
        super().__init__(target.host, target.port, timeout=deadline.remaining())
        self.default_port = 443 if target.scheme == "https" else 80
        self._target, self._ip, self._deadline = target, str(ip), deadline
        self.live_sock: socket.socket | None = None
        self.watchdog: _Watchdog | None = None

    def connect(self) -> None:
        sock = socket.create_connection((self._ip, self.port), timeout=self._deadline.remaining())
        self.watchdog = _Watchdog(sock, self._deadline.left())
        if self._target.scheme == "https":
            sock = _tls_context().wrap_socket(sock, server_hostname=self._target.host)
        self.sock = self.live_sock = sock

    def release(self) -> None:
        self.close()
        if self.live_sock is not None:
            with contextlib.suppress(OSError):  # end the connection even while a response still holds the socket
                self.live_sock.shutdown(socket.SHUT_RDWR)
            self.live_sock.close()
        if self.watchdog is not None:
            self.watchdog.close()


@contextlib.contextmanager
def _network_errors(deadline: _Deadline) -> Iterator[None]:
    try:
        yield
    except ssl.SSLCertVerificationError:
        raise ImageError("The URL's HTTPS certificate could not be verified.") from None
    except (OSError, http.client.HTTPException, ValueError):
        deadline.remaining()  # a cut-off at the deadline reports as a timeout
        raise ImageError("Could not download the image from the URL.") from None


def _connect(target: Target, addresses: list, deadline: _Deadline) -> _PinnedConnection:
    for ip in addresses:
        conn = _PinnedConnection(target, ip, deadline)
        try:
            conn.connect()
            return conn
        except ssl.SSLCertVerificationError:
            conn.release()
            raise
        except OSError:
            conn.release()
    deadline.remaining()
    raise ImageError("Could not connect to the server in the URL.")


def _content_type(resp: http.client.HTTPResponse) -> str:
    value = (resp.getheader("Content-Type") or "").split(";")[0].strip().lower()
    return re.sub(r"[^a-z0-9.+/-]", "", value)[:60]  # server-controlled text: keep it tame


def _read_image_body(
    resp: http.client.HTTPResponse, conn: _PinnedConnection, guard: UrlGuard, deadline: _Deadline
) -> bytes:
    ctype = _content_type(resp)
    if not ctype.startswith("image/") or ctype == "image/svg+xml":
        raise UrlRefusedError(f"Refused: the URL does not point to an image (content type {ctype or 'missing'}).")
    too_big = UrlRefusedError(f"Refused: the image at the URL is larger than {size_text(guard.max_bytes)}.")
    length = (resp.getheader("Content-Length") or "").strip()
    if length.isdigit() and int(length) > guard.max_bytes:
        raise too_big
    chunks, total = [], 0
    while True:
        if conn.live_sock is not None:
            conn.live_sock.settimeout(deadline.remaining())
        chunk = resp.read1(64 * 1024)  # read1: one socket read at a time, so the deadline is checked often
        if not chunk:
            break
        total += len(chunk)
        if total > guard.max_bytes:
            raise too_big
        chunks.append(chunk)
    deadline.remaining()  # the watchdog may have cut the stream short
    if total == 0:
        raise ImageError("The URL returned an empty file.")
    return b"".join(chunks)


def _get(target: Target, conn: _PinnedConnection) -> http.client.HTTPResponse:
    headers = {"User-Agent": "similarity-image-fetch/1.0", "Accept": "image/*", "Connection": "close"}
    conn.request("GET", target.path, headers=headers)
    return conn.getresponse()


def fetch_url(url: str, guard: UrlGuard = DEFAULT_GUARD) -> bytes:
    """Download an image URL safely and return its bytes; the caller decodes them with ``load_image``.

    Only http(s) to public addresses (or ``guard.allow_hosts``), checked before every connection,
    connected to the checked address, at most ``guard.max_redirects`` redirects, one total timeout,
    a byte cap and an ``image/*`` content type.
    """
    deadline = _Deadline(guard.timeout)
    current = url
    for _hop in range(guard.max_redirects + 1):
        target = parse_url(current)
        addresses = _resolve(target, guard, deadline)
        with _network_errors(deadline):
            conn = _connect(target, addresses, deadline)
            resp = None
            try:
                resp = _get(target, conn)
                location = resp.getheader("Location") if resp.status in _REDIRECTS else None
                if location is None:
                    if not 200 <= resp.status < 300:
                        raise HttpStatusError(resp.status)
                    return _read_image_body(resp, conn, guard, deadline)
            finally:
                if resp is not None:
                    resp.close()
                conn.release()
        current = urljoin(current, location.strip())
    raise UrlRefusedError("Refused: the URL redirected too many times.")
