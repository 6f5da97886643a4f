"""What a URL points to, for the URL guard (``urlfetch.py``): its parsed target and whether an address is public.

Browsers' legacy IPv4 spellings (decimal, octal, hex) are read as browsers read them, and IPv6 addresses that
embed an IPv4 one (mapped, 6to4, NAT64) are judged by it, so no spelling of a private address slips through.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from .errors import UrlRefusedError

PRIVATE = "Refused: the URL points to a private or local network address."
MALFORMED = "Refused: the URL is not a valid web address."
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # embeds an IPv4 address a NAT64 gateway would reach
_IPV4_PART = re.compile(r"0x[0-9a-f]*|0[0-7]*|[1-9][0-9]*")
_PATH_SAFE = "/%:@!$&'()*+,;=-._~"


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # ASCII host name or IP literal, no brackets
    port: int
    path: str  # path and query, percent-encoded


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


def ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return _legacy_ipv4(host)


def parse_url(url: str) -> Target:
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
    if ip_literal(host) is None:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise UrlRefusedError(MALFORMED) from None
    if not host:
        raise UrlRefusedError(MALFORMED)
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_PATH_SAFE + "?")
    return Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [ip.ipv4_mapped, ip.sixtofour]
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [v4 for v4 in found if v4 is not None]


def is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return is_public(ip.ipv4_mapped)
        if ip.is_site_local or not all(is_public(v4) for v4 in _embedded_ipv4(ip)):
            return False
    elif ip in _CGNAT:
        return False
    flags = (ip.is_private, ip.is_loopback, ip.is_link_local, ip.is_multicast, ip.is_reserved, ip.is_unspecified)
    return ip.is_global and not any(flags)


def host_key(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
