"""The URL guard, against a local HTTP server that this file starts on 127.0.0.1.

An audit hook records every socket connect and DNS lookup made by each test, and each test asserts
that nothing but its own loopback server was contacted: refused addresses are refused before any
connection, and nothing here can reach another machine.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from similarity.errors import ImageError, UrlRefusedError
from similarity.images import UrlGuard, fetch_url, load_image

PRIVATE = "private or local network address"
_EVENTS: list[tuple[str, object]] = []
_RECORDING = threading.Event()


def _audit(event: str, args: tuple) -> None:
    if _RECORDING.is_set() and event in ("socket.connect", "socket.getaddrinfo") and _ours():
        _EVENTS.append((event, args[1] if event == "socket.connect" else args[:2]))


def _ours() -> bool:
    """The hook is process-wide: record only the test's own thread and the fetcher's DNS worker."""
    thread = threading.current_thread()
    return thread is threading.main_thread() or thread.name == "url-dns"


sys.addaudithook(_audit)  # hooks cannot be removed; it records only while a test here runs


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (16, 12), (10, 200, 30)).save(out, "PNG")
    return out.getvalue()


PNG = _png()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        url = urlsplit(self.path)
        route = getattr(self, "route_" + url.path.strip("/").replace(".", "_").replace("-", "_") or "root", None)
        if route is None:
            self.send_error(404)
            return
        with contextlib.suppress(OSError):  # the client hung up, which is what the guard is supposed to do
            route(parse_qs(url.query))

    def reply(self, body: bytes, ctype: str = "image/png", status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def route_ok_png(self, query: dict) -> None:
        self.reply(PNG)

    def route_charset(self, query: dict) -> None:
        self.reply(PNG, "IMAGE/PNG; charset=binary")

    def route_html(self, query: dict) -> None:
        self.reply(b"<html><body>not an image</body></html>", "text/html; charset=utf-8")

    def route_svg(self, query: dict) -> None:
        self.reply(b'<svg xmlns="http://www.w3.org/2000/svg"/>', "image/svg+xml")

    def route_notype(self, query: dict) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(PNG)

    def route_empty(self, query: dict) -> None:
        self.reply(b"")

    def route_redirect(self, query: dict) -> None:
        self.send_response(int(query.get("code", ["302"])[0]))
        self.send_header("Location", query["to"][0])
        self.end_headers()

    def route_chain(self, query: dict) -> None:
        left = int(query.get("n", ["4"])[0])
        self.send_response(302)
        self.send_header("Location", f"/chain?n={left - 1}" if left > 1 else "/ok.png")
        self.end_headers()

    def route_slow(self, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", "1000")
        self.end_headers()
        for _ in range(20):  # bounded, so the handler thread always ends
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.5)

    def route_slow_headers(self, query: dict) -> None:
        self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: image/png\r\nX-Drip: ")
        for _ in range(20):  # each byte comes well within any per-read timeout
            self.wfile.write(b"a")
            self.wfile.flush()
            time.sleep(0.3)

    def route_endless(self, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.end_headers()
        block = b"\x00" * 16384
        for _ in range(4096):  # 64 MB at most, far past any cap used here
            self.wfile.write(block)

    def route_huge(self, query: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(10**9))
        self.end_headers()


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThreadingHTTPServer]:
    """The same handler behind a self-signed certificate, which the guard must not trust."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def port(server: ThreadingHTTPServer) -> int:
    return server.server_address[1]


@pytest.fixture
def base(port: int) -> str:
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def guard(port: int) -> UrlGuard:
    return UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{port}"}), timeout=5.0)


@pytest.fixture(autouse=True)
def contacts(port: int) -> Iterator[list]:
    """Every connect must go to our own server; DNS lookups only for loopback literals and 'localhost'."""
    _EVENTS.clear()
    _RECORDING.set()
    yield _EVENTS
    _RECORDING.clear()
    for event, target in _EVENTS:
        if event == "socket.connect":
            assert target == ("127.0.0.1", port), f"contacted {target}"
        else:
            assert target[0] in ("127.0.0.1", "localhost", b"localhost"), f"looked up {target}"


def connects(events: list) -> list:
    return [target for event, target in events if event == "socket.connect"]


def refused(url: str, guard: UrlGuard, fragment: str, error: type[ImageError] = UrlRefusedError) -> str:
    with pytest.raises(error) as info:
        fetch_url(url, guard)
    message = str(info.value)
    assert fragment in message, message
    return message


# ----------------------------------------------------------------------------- allowed


def test_fetch_ok(base: str, guard: UrlGuard, contacts: list) -> None:
    data = fetch_url(f"{base}/ok.png", guard)
    assert data == PNG
    loaded = load_image(data)
    assert (loaded.image.size, loaded.format) == ((16, 12), "PNG")
    assert len(connects(contacts)) == 1


def test_content_type_parameters_and_case(base: str, guard: UrlGuard) -> None:
    assert fetch_url(f"{base}/charset", guard) == PNG


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_to_allowed_host(base: str, guard: UrlGuard, code: int, contacts: list) -> None:
    assert fetch_url(f"{base}/redirect?code={code}&to=/ok.png", guard) == PNG
    assert len(connects(contacts)) == 2


def test_three_redirects_are_allowed(base: str, guard: UrlGuard) -> None:
    assert fetch_url(f"{base}/chain?n=3", guard) == PNG


# ----------------------------------------------------------------------------- addresses


def test_default_guard_refuses_the_loopback_server(base: str, contacts: list) -> None:
    refused(f"{base}/ok.png", UrlGuard(), PRIVATE)
    assert contacts == []


def test_allow_entry_is_exact_about_the_port(port: int, contacts: list) -> None:
    refused(
        f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/ok.png",
        UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{port}"})),
        PRIVATE,
    )
    assert contacts == []


def test_localhost_name_is_resolved_and_refused(port: int, contacts: list) -> None:
    refused(f"http://localhost:{port}/ok.png", UrlGuard(timeout=5.0), PRIVATE)
    assert connects(contacts) == []


@pytest.mark.parametrize(
    "target",
    [
        "http://127.0.0.1:1/",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://0.0.0.0/",
        "http://2130706433/",
        "http://0x7f000001/",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_redirect_to_private_address_is_refused_without_connecting(
    base: str, guard: UrlGuard, target: str, contacts: list
) -> None:
    refused(f"{base}/redirect?to={target}", guard, PRIVATE)
    assert connects(contacts) == [("127.0.0.1", int(base.rsplit(":", 1)[1]))]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://127.1/",
        "http://2130706433/",
        "http://0x7f000001/",
        "HTTP://0X7F000001/",
        "http://0177.0.0.1/",
        "http://0177.0.0.01/",
        "http://0x7f.1/",
        "http://127.0.0.1./",
        "http://017700000001/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]/",
        "http://[::ffff:10.1.2.3]/",
        "http://[::127.0.0.1]/",
        "http://[64:ff9b::a00:1]/",
        "http://[2002:7f00:1::]/",
        "http://100.64.0.1/",
        "http://100.127.255.254/",
        "http://[fd00::1]/",
        "http://[fe80::1]/",
        "http://[fe80::1%25eth0]/",
        "http://[fec0::1]/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://239.255.255.250:1900/",
        "http://0.0.0.0/",
        "http://0/",
        "http://[::]/",
        "http://255.255.255.255/",
        "http://240.0.0.1/",
        "http://192.168.1.1/",
        "http://172.16.0.1/",
        "https://10.0.0.1/",
        "http://169.254.169.254/latest/meta-data",
        "http://192.0.2.1/",
    ],
)
def test_non_public_addresses_are_refused_directly(url: str, contacts: list) -> None:
    refused(url, UrlGuard(), PRIVATE)
    assert contacts == []  # no DNS lookup and no connection


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("ftp://example.com/a.png", "only http:// and https://"),
        ("file:///etc/passwd", "only http:// and https://"),
        ("gopher://example.com/", "only http:// and https://"),
        ("data:image/png;base64,iVBORw0KGgo=", "only http:// and https://"),
        ("//example.com/a.png", "only http:// and https://"),
        ("http://", "not a valid web address"),
        ("http://example.com:99999/", "not a valid web address"),
        ("http://exa mple.com/", "not a valid web address"),
        ("http://example.com/\r\nX-Injected: 1", "not a valid web address"),
        ("http://256.256.256.256/", "not a valid web address"),
        ("http://0x1ffffffff/", "not a valid web address"),
        ("", "not a valid web address"),
    ],
)
def test_bad_urls_are_refused(url: str, fragment: str, contacts: list) -> None:
    refused(url, UrlGuard(), fragment)
    assert contacts == []


def test_userinfo_is_refused_and_not_echoed(contacts: list) -> None:
    message = refused("http://user:pw@example.com/", UrlGuard(), "user name or password")
    assert "pw" not in message and "example.com" not in message
    refused("http://token@127.0.0.1/", UrlGuard(), "user name or password")
    assert contacts == []


def test_redirect_to_userinfo_or_other_scheme(base: str, guard: UrlGuard) -> None:
    refused(f"{base}/redirect?to=http://a:secret@127.0.0.1/", guard, "user name or password")
    refused(f"{base}/redirect?to=file:///etc/passwd", guard, "only http:// and https://")


# ----------------------------------------------------------------------------- limits


def test_too_many_redirects(base: str, guard: UrlGuard) -> None:
    refused(f"{base}/chain?n=4", guard, "redirected too many times")


def test_max_redirects_zero(base: str, port: int) -> None:
    strict = UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{port}"}), max_redirects=0)
    refused(f"{base}/chain?n=1", strict, "redirected too many times")


def test_slow_drip_hits_the_total_timeout(base: str, port: int) -> None:
    quick = UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{port}"}), timeout=1.5)
    start = time.monotonic()
    refused(f"{base}/slow", quick, "took too long to answer (the limit is 1.5 s)", ImageError)
    assert 1.3 < time.monotonic() - start < 3.0


def test_slow_drip_of_headers_hits_the_total_timeout(base: str, port: int) -> None:
    quick = UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{port}"}), timeout=1.0)
    start = time.monotonic()
    refused(f"{base}/slow-headers", quick, "took too long to answer", ImageError)
    assert time.monotonic() - start < 2.0


def test_endless_body_hits_the_cap(base: str, port: int) -> None:
    capped = UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{port}"}), max_bytes=64 * 1024, timeout=5.0)
    start = time.monotonic()
    refused(f"{base}/endless", capped, "larger than 64 KB")
    assert time.monotonic() - start < 2.0


def test_declared_length_over_the_cap_is_refused_before_reading(base: str, guard: UrlGuard) -> None:
    refused(f"{base}/huge", guard, "larger than 10 MB")


def test_wrong_content_type(base: str, guard: UrlGuard) -> None:
    refused(f"{base}/html", guard, "does not point to an image (content type text/html)")


def test_svg_content_type_is_refused(base: str, guard: UrlGuard) -> None:
    refused(f"{base}/svg", guard, "content type image/svg+xml")


def test_missing_content_type(base: str, guard: UrlGuard) -> None:
    refused(f"{base}/notype", guard, "content type missing")


def test_http_404(base: str, guard: UrlGuard) -> None:
    with pytest.raises(ImageError) as info:
        fetch_url(f"{base}/404", guard)
    assert str(info.value) == "The URL answered with HTTP 404."
    assert not isinstance(info.value, UrlRefusedError)


def test_empty_body(base: str, guard: UrlGuard) -> None:
    refused(f"{base}/empty", guard, "empty file", ImageError)


def test_nothing_listening(contacts: list) -> None:
    # A loopback port we hold ourselves (bound, never listening), so the connection is refused.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        closed_port = held.getsockname()[1]
        allow = UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{closed_port}"}), timeout=2.0)
        with pytest.raises(ImageError, match="Could not connect"):
            fetch_url(f"http://127.0.0.1:{closed_port}/", allow)
    assert connects(contacts) == [("127.0.0.1", closed_port)]
    contacts.clear()  # the only connect went to the port held above


def test_https_certificate_is_verified(tls_server: ThreadingHTTPServer, port: int, contacts: list) -> None:
    tls_port = tls_server.server_address[1]
    allow = UrlGuard(allow_hosts=frozenset({f"127.0.0.1:{tls_port}"}), timeout=5.0)
    refused(f"https://127.0.0.1:{tls_port}/ok.png", allow, "certificate could not be verified", ImageError)
    assert connects(contacts) == [("127.0.0.1", tls_port)]
    contacts.clear()  # the only connect went to our own TLS server


def test_guard_defaults() -> None:
    default = UrlGuard()
    assert (default.timeout, default.max_bytes, default.max_redirects) == (10.0, 10 * 1024 * 1024, 3)
    assert default.allow_hosts == frozenset()
