"""The single door for images: bytes, paths, PIL images and URLs become bounded RGB images.

Every input (upload, URL, CLI, seeding, catalog tab) passes through here, so limits, format checks,
EXIF orientation and transparency handling live in one place. Errors are ``ImageError`` (or
``UrlRefusedError``) with short messages that are safe to show; library exception text never leaks.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import io
import ipaddress
import os
import re
import socket
import ssl
import stat
import struct
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from urllib.parse import quote, urljoin, urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

# Register exactly the decoders we accept (Image.open(formats=...) needs them loaded).
from PIL import (  # noqa: F401  # isort: skip
    BmpImagePlugin,
    GifImagePlugin,
    JpegImagePlugin,
    MpoImagePlugin,  # registers no opener of its own: JPEG files with several pictures become MPO
    PngImagePlugin,
    TiffImagePlugin,
    WebPImagePlugin,
)

from .errors import ImageError, UrlRefusedError

MAX_UPLOAD_BYTES = 10 * 1024 * 1024  # uploads and URLs
MAX_LOCAL_BYTES = 50 * 1024 * 1024  # local seeding files
MAX_PIXELS = 60_000_000  # declared pixel cap (a 53 MP photo must pass)
DRAFT_SIZE = 512  # JPEG draft target: big JPEGs decode at 1/2..1/8 scale
MAX_SIDE = 1024  # returned images have longest side <= this

ImageSource = bytes | bytearray | str | os.PathLike | Image.Image

SUPPORTED = "JPEG, PNG, WebP, GIF, BMP, TIFF"
NOT_IMAGE = f"This file is not a supported image ({SUPPORTED})."
DAMAGED = "The image file is damaged or incomplete."
EMPTY = "The file is empty."
HEIC = "HEIC/HEIF photos are not supported; please convert the photo to JPEG or PNG first."
AVIF = "AVIF images are not supported; please convert the image to JPEG or PNG first."

_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")  # the JPEG opener also yields MPO (phone photos)
_IMAGE_MAGIC = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")
_HEIF_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1"}
_AVIF_BRANDS = {b"avif", b"avis"}
_HIGH_DEPTH = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Everything Pillow's decoders are known to raise on hostile input; all of it becomes ImageError.
_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    struct.error,
    EOFError,
    IndexError,
    TypeError,
    KeyError,
    ZeroDivisionError,
    RuntimeError,
    MemoryError,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
)
# warnings.catch_warnings mutates process-wide state; the lock keeps our own threads from interleaving it.
_OPEN_LOCK = threading.Lock()


@dataclass(frozen=True)
class LoadedImage:
    image: Image.Image  # mode RGB, longest side <= max_side
    sha256: str  # hex sha256 of the original bytes (PIL input: of mode, size and raw pixels)
    nbytes: int  # size of the original bytes (0 for PIL input)
    format: str | None  # e.g. "JPEG", "PNG"


def image_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def is_url(text: str) -> bool:
    return isinstance(text, str) and text.strip().lower().startswith(("http://", "https://"))


def _size_text(nbytes: int) -> str:
    mb = nbytes / (1024 * 1024)
    if mb >= 1:
        return f"{mb:.0f} MB" if mb == int(mb) else f"{mb:.1f} MB"
    return f"{max(1, round(nbytes / 1024))} KB"


def _check_size(nbytes: int, max_bytes: int) -> None:
    if nbytes == 0:
        raise ImageError(EMPTY)
    if nbytes > max_bytes:
        raise ImageError(f"The file is too large (the limit is {_size_text(max_bytes)}).")


def _check_pixels(size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(DAMAGED)
    if width * height > max_pixels:
        raise ImageError(
            f"The image has too many pixels ({width}x{height}; the limit is {max_pixels / 1e6:g} megapixels)."
        )


def read_bytes(path: str | os.PathLike, max_bytes: int = MAX_LOCAL_BYTES) -> bytes:
    """Read a local image file, refusing folders, special files, empty and oversized files."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise ImageError("The file does not exist.") from None
    except (OSError, ValueError):
        raise ImageError("The file could not be read.") from None
    if stat.S_ISDIR(info.st_mode):
        raise ImageError("This is a folder, not an image file.")
    if not stat.S_ISREG(info.st_mode):  # FIFOs and devices could block or never end
        raise ImageError("This is not a regular file.")
    _check_size(info.st_size, max_bytes)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # the file may have grown since stat
    except OSError:
        raise ImageError("The file could not be read.") from None
    _check_size(len(data), max_bytes)
    return data


def _refuse_unsupported(data: bytes) -> None:
    if data[4:8] == b"ftyp":  # ISO-BMFF container: HEIC, AVIF, MP4...
        brand = data[8:12]
        raise ImageError(HEIC if brand in _HEIF_BRANDS else AVIF if brand in _AVIF_BRANDS else NOT_IMAGE)


def _looks_like_image(data: bytes) -> bool:
    return data.startswith(_IMAGE_MAGIC) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _open(data: bytes, max_pixels: int) -> Image.Image:
    try:
        # Pillow's bomb warning fires inside open(); turn it into an error instead of a stray warning.
        with _OPEN_LOCK, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"The image has too many pixels (the limit is {max_pixels / 1e6:g} megapixels).") from None
    except UnidentifiedImageError:
        raise ImageError(DAMAGED if _looks_like_image(data) else NOT_IMAGE) from None
    except _DECODE_ERRORS:
        raise ImageError(DAMAGED) from None
    _check_pixels(img.size, max_pixels)
    return img


def _decode(data: bytes, max_pixels: int, max_side: int) -> tuple[Image.Image, str | None]:
    if not data:
        raise ImageError(EMPTY)
    _refuse_unsupported(data)
    img = _open(data, max_pixels)
    try:
        if img.format in ("JPEG", "MPO"):
            img.draft("RGB", (DRAFT_SIZE, DRAFT_SIZE))  # decode at 1/2..1/8 scale: a 50 MP photo stays cheap
        img.load()
        _check_pixels(img.size, max_pixels)  # GIF frames may grow the canvas while loading
        return _normalise(img, max_side), img.format
    except ImageError:
        raise
    except _DECODE_ERRORS:
        raise ImageError(DAMAGED) from None


def decode_image(data: bytes, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE) -> Image.Image:
    """Decode image bytes to an RGB image with longest side <= ``max_side``; any failure is ImageError."""
    return _decode(bytes(data), max_pixels, max_side)[0]


def _orientation(img: Image.Image) -> int:
    try:
        value = img.getexif().get(0x0112, 1)
    except _DECODE_ERRORS:  # a broken EXIF block must not sink a good picture
        return 1
    return value if value in _TRANSPOSE else 1


def _high_depth_to_rgb(img: Image.Image) -> Image.Image:
    arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
    if img.mode.startswith("I;16"):
        arr = arr / 257.0
    else:
        low, high = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
        if img.mode == "F" and low >= 0 and high <= 1:
            arr = arr * 255.0
        elif low >= 0 and 255 < high <= 65535:
            arr = arr / 257.0
        elif low < 0 or high > 65535:  # unknown range: stretch what is there
            arr = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
    gray = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    return Image.fromarray(gray, "L").convert("RGB")


def _flatten_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _convert_mode(img: Image.Image) -> Image.Image:
    if img.tell() != 0:  # animations: always the first frame
        img.seek(0)
    mode, transparent = img.mode, "transparency" in img.info
    if mode == "RGB" and not transparent:
        return img
    if mode in _HIGH_DEPTH:
        return _high_depth_to_rgb(img)
    if mode in _ALPHA_MODES or transparent:
        return _flatten_on_white(img)
    return img.convert("RGB")


def _shrink(img: Image.Image, max_side: int | None) -> Image.Image:
    width, height = img.size
    if max_side is None or max(width, height) <= max_side:
        return img
    scale = max_side / max(width, height)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=2.0)


def _normalise(img: Image.Image, max_side: int | None) -> Image.Image:
    orientation = _orientation(img)
    out = _shrink(_convert_mode(img), max_side)
    if orientation != 1:
        out = out.transpose(_TRANSPOSE[orientation])
    if out is img:
        out = img.copy()  # never hand back (or later mutate) the caller's or the file-backed object
    out.info = {}  # drop EXIF so nobody applies the orientation a second time
    return out


def to_rgb(img: Image.Image) -> Image.Image:
    """First frame, EXIF-transposed, 8-bit RGB with transparency flattened onto white (size unchanged)."""
    try:
        img.load()
        return _normalise(img, None)
    except _DECODE_ERRORS:
        raise ImageError(DAMAGED) from None


def _pil_sha256(img: Image.Image) -> str:
    digest = hashlib.sha256(f"{img.mode}:{img.size[0]}x{img.size[1]}:".encode())
    digest.update(img.tobytes())
    return digest.hexdigest()


def _load_pil(img: Image.Image, max_pixels: int, max_side: int) -> LoadedImage:
    _check_pixels(img.size, max_pixels)
    try:
        if img.tell() != 0:  # hash and return the first frame, whichever frame the caller left it on
            img.seek(0)
        img.load()
        digest = _pil_sha256(img)
        return LoadedImage(_normalise(img, max_side), digest, 0, img.format)
    except _DECODE_ERRORS:
        raise ImageError(DAMAGED) from None


def load_image(
    source: ImageSource,
    *,
    max_bytes: int = MAX_UPLOAD_BYTES,
    max_pixels: int = MAX_PIXELS,
    max_side: int = MAX_SIDE,
) -> LoadedImage:
    """Bytes, a file path or a PIL image -> LoadedImage. URLs must go through ``fetch_url`` explicitly."""
    if isinstance(source, Image.Image):
        return _load_pil(source, max_pixels, max_side)
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), max_bytes)
    elif isinstance(source, str) and is_url(source):
        raise ImageError("This is a web address; URLs are fetched separately (fetch_url), not loaded as files.")
    elif isinstance(source, str | os.PathLike):
        data = read_bytes(source, max_bytes)
    else:
        raise TypeError(f"load_image() cannot read a {type(source).__name__}")
    image, fmt = _decode(data, max_pixels, max_side)
    return LoadedImage(image, image_sha256(data), len(data), fmt)


def make_thumbnail(image: Image.Image, max_side: int = 384, quality: int = 80) -> bytes:
    """WebP bytes of ``image`` with longest side <= ``max_side``."""
    thumb = _shrink(to_rgb(image), max_side)
    out = io.BytesIO()
    thumb.save(out, format="WEBP", quality=quality, method=4)
    return out.getvalue()


# --------------------------------------------------------------------------- URL fetching

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
    max_bytes: int = MAX_UPLOAD_BYTES
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
    too_big = UrlRefusedError(f"Refused: the image at the URL is larger than {_size_text(guard.max_bytes)}.")
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
                        raise ImageError(f"The URL answered with HTTP {resp.status}.")
                    return _read_image_body(resp, conn, guard, deadline)
            finally:
                if resp is not None:
                    resp.close()
                conn.release()
        current = urljoin(current, location.strip())
    raise UrlRefusedError("Refused: the URL redirected too many times.")
