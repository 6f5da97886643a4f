"""Safe server-side fetching of image URLs: the guard against SSRF, slow servers and endless bodies.

Only http(s) to public addresses, resolved here and connected to exactly the address that was checked
(no DNS rebinding), at most a few redirects (each re-checked), one total timeout, a byte cap and an
``image/*`` content type. Errors are ``ImageError``/``UrlRefusedError`` with messages safe to show.
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
from urllib.parse import quote, urljoin, urlsplit

from .errors import HttpStatusError, ImageError, UrlRefusedError

MAX_URL_BYTES = 10 * 1024 * 1024  # the same cap as uploads (images.MAX_UPLOAD_BYTES)


def size_text(nbytes: int) -> str:
    """Human size for messages: "10 MB", "1.5 MB", "64 KB"."""
    mb = nbytes / (1024 * 1024)
    if mb >= 1:
        return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, round(nbytes / 1024))} KB"


PRIVATE = "Refused: the URL points to a private or local network address."
MALFORMED = "Refused: the URL is not a valid web address."
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # embeds an IPv4 address a NAT64 gateway would reach
_IPV4_PART = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True)
class UrlGuard:
    timeout: float = 10.0  # total seconds for the whole fetch, redirects included
    max_bytes: int = MAX_URL_BYTES
    max_redirects: int = 3
    # exact "ip:port" / "host:port" entries a caller (a test's own server) allows; default: public only
    allow_hosts: frozenset[str] = frozenset()


DEFAULT_GUARD = UrlGuard()


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str  # ASCII host name or IP literal, no brackets
    port: int
    path: str  # path and query, percent-encoded


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


def _ipv4_number(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    return int(part, 8) if len(part) > 1 and part.startswith("0") else int(part)


def _legacy_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """Decimal, octal and hex spellings (2130706433, 0x7f000001, 0177.0.0.1) as browsers read them."""
    parts = host.split(".")
    if len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if not 1 <= len(parts) <= 4 or not all(_IPV4_PART.fullmatch(p) for p in parts):
        return None
    nums = [_ipv4_number(p) for p in parts]
    *head, last = nums
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(nums)):
        raise UrlRefusedError(MALFORMED)
    value = sum(n << (8 * (3 - i)) for i, n in enumerate(head)) + last
    return ipaddress.IPv4Address(value)


def _ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _legacy_ipv4(host)


def _parse_url(url: str) -> _Target:
    text = url.strip() if isinstance(url, str) else ""
    if not text or any(ord(c) < 33 or ord(c) == 127 for c in text):
        raise UrlRefusedError(MALFORMED)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise UrlRefusedError(MALFORMED) from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefusedError("Refused: only http:// and https:// URLs are allowed.")
    if "@" in parts.netloc:
        raise UrlRefusedError("Refused: URLs with a user name or password are not allowed.")
    host = parts.hostname or ""
    if _ip_literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRefusedError(MALFORMED) from None
    if not host:
        raise UrlRefusedError(MALFORMED)
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [ip.ipv4_mapped, ip.sixtofour]
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def _is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return _is_public(ip.ipv4_mapped)
        if ip.is_site_local or not all(_is_public(v4) for v4 in _embedded_ipv4(ip)):
            return False
    elif ip in _CGNAT:
        return False
    flags = (ip.is_private, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved, ip.is_unspecified)
    return ip.is_global and not any(flags)


def _host_key(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


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


def _resolve(target: _Target, guard: UrlGuard, deadline: _Deadline) -> list:
    """The checked addresses we will connect to; refuse if ANY of them is not public."""
    literal = _ip_literal(target.host)
    addresses = [literal] if literal is not None else _lookup(target.host, target.port, deadline)
    host_allowed = _host_key(target.host, target.port) in guard.allow_hosts
    for ip in addresses:
        allowed = host_allowed or _host_key(str(ip), target.port) in guard.allow_hosts
        if not allowed and not _is_public(ip):
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

    def __init__(self, target: _Target, ip: object, deadline: _Deadline) -> None:
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


def _connect(target: _Target, addresses: list, deadline: _Deadline) -> _PinnedConnection:
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


def _get(target: _Target, conn: _PinnedConnection) -> http.client.HTTPResponse:
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
        target = _parse_url(current)
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
