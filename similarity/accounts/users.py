"""The users file: one ``name:<hash>`` line per user, the hash an scrypt digest with its own salt and parameters.

    alice:scrypt$n=16384,r=8,p=1$<salt, base64>$<digest, base64>

Blank lines and ``#`` comments are allowed. The file is rewritten atomically with mode 0600. Parse errors
name the line number but never repeat the line (it holds a hash).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import secrets
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import ConfigError, SimilarityError

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1  # about 16 MB and a few tens of ms per check
_SALT_BYTES, _DIGEST_BYTES = 16, 32
_MAX_N, _MAX_RP = 2**20, 64  # a tampered file must not make each check cost gigabytes
_PARAMS = re.compile(r"n=(\d{1,8}),r=(\d{1,3}),p=(\d{1,3})")


class PasswordHash:
    """One parsed ``scrypt$...`` value; ``verify`` compares digests in constant time."""

    def __init__(self, n: int, r: int, p: int, salt: bytes, digest: bytes) -> None:
        self.n, self.r, self.p, self.salt, self.digest = n, r, p, salt, digest

    def __repr__(self) -> str:  # never show the salt or digest
        return f"PasswordHash(n={self.n}, r={self.r}, p={self.p})"

    @classmethod
    def create(cls, password: str) -> PasswordHash:
        check_password(password)
        salt = secrets.token_bytes(_SALT_BYTES)
        return cls(SCRYPT_N, SCRYPT_R, SCRYPT_P, salt, _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    @classmethod
    def parse(cls, text: str) -> PasswordHash:
        """Raises ValueError (with a reason that never quotes the value)."""
        parts = text.split("$")
        if len(parts) != 4 or parts[0] != "scrypt":
            raise ValueError("the hash is not an scrypt$... value made by `python -m similarity users add`")
        params = _PARAMS.fullmatch(parts[1])
        if not params:
            raise ValueError("the scrypt parameters are not n=...,r=...,p=...")
        n, r, p = (int(v) for v in params.groups())
        if n < 2 or n & (n - 1) or n > _MAX_N or not 1 <= r <= _MAX_RP or not 1 <= p <= _MAX_RP:
            raise ValueError("the scrypt parameters are out of range")
        try:
            salt, digest = (base64.b64decode(v, validate=True) for v in parts[2:])
        except (binascii.Error, ValueError):
            raise ValueError("the salt or digest is not base64") from None
        if len(salt) < 8 or len(digest) < 16:
            raise ValueError("the salt or digest is too short")
        return cls(n, r, p, salt, digest)

    def encode(self) -> str:
        b64 = base64.b64encode
        return f"scrypt$n={self.n},r={self.r},p={self.p}${b64(self.salt).decode()}${b64(self.digest).decode()}"

    def verify(self, password: str) -> bool:
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            password = ""  # still compute a digest: the time taken says nothing
        candidate = _scrypt(password, self.salt, self.n, self.r, self.p, len(self.digest))
        return hmac.compare_digest(candidate, self.digest)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int, dklen: int = _DIGEST_BYTES) -> bytes:
    memory = 128 * r * (n + p + 2) + 1024 * 1024
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=memory, dklen=dklen)


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise SimilarityError(
            "A user name is 1-64 characters: letters, digits and . _ @ - (starting with a letter or digit)."
        )
    return name


def check_password(password: str) -> None:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise SimilarityError(f"A password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long.")
    if "\n" in password or "\r" in password:
        raise SimilarityError("A password cannot contain a line break.")


class Users:
    """The users of a users file, by name. ``verify`` takes as long for an unknown name as for a known one."""

    def __init__(self, hashes: dict[str, PasswordHash] | None = None) -> None:
        self._hashes = dict(hashes or {})
        self._decoy: PasswordHash | None = None

    def __repr__(self) -> str:
        return f"Users({len(self._hashes)} users)"

    def __len__(self) -> int:
        return len(self._hashes)

    def __contains__(self, name: object) -> bool:
        return name in self._hashes

    def names(self) -> list[str]:
        return sorted(self._hashes)

    def verify(self, name: str, password: str) -> bool:
        known = self._hashes.get(name) if isinstance(name, str) else None
        ok = (known or self._decoy_hash()).verify(password)
        return ok and known is not None

    def _decoy_hash(self) -> PasswordHash:
        if self._decoy is None:  # same parameters as a real entry, for a password nobody knows
            model = next(iter(self._hashes.values()), None)
            n, r, p = (model.n, model.r, model.p) if model else (SCRYPT_N, SCRYPT_R, SCRYPT_P)
            salt = secrets.token_bytes(_SALT_BYTES)
            self._decoy = PasswordHash(n, r, p, salt, secrets.token_bytes(_DIGEST_BYTES))
        return self._decoy

    def with_user(self, name: str, password: str) -> Users:
        return Users({**self._hashes, check_name(name): PasswordHash.create(password)})

    def without(self, name: str) -> Users:
        if name not in self._hashes:
            raise SimilarityError(f"There is no user {name!r}.")
        return Users({k: v for k, v in self._hashes.items() if k != name})

    def lines(self) -> Iterator[str]:
        for name in sorted(self._hashes):
            yield f"{name}:{self._hashes[name].encode()}"


def parse_users(text: str, source: str = "the users file") -> Users:
    hashes: dict[str, PasswordHash] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition(":")
        if not sep or not NAME.fullmatch(name):
            raise ConfigError(f"{source}, line {number}: expected name:hash (a name of letters, digits, . _ @ -).")
        if name in hashes:
            raise ConfigError(f"{source}, line {number}: the user {name!r} appears twice.")
        try:
            hashes[name] = PasswordHash.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{source}, line {number}: {exc}.") from None
    return Users(hashes)


class UsersFile:
    """Reads and atomically rewrites a users file (mode 0600)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def exists(self) -> bool:
        return self.path.is_file()

    def load(self, *, missing_ok: bool = False) -> Users:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            if missing_ok:
                return Users()
            raise ConfigError(
                f"The users file {self.path} (SIMILARITY_USERS_FILE) does not exist; "
                "create it with `python -m similarity users add NAME`."
            ) from None
        except (OSError, UnicodeDecodeError):
            raise ConfigError(f"The users file {self.path} (SIMILARITY_USERS_FILE) cannot be read.") from None
        return parse_users(text, f"The users file {self.path}")

    def save(self, users: Users) -> None:
        header = "# Users of the AI Similar Image Visualizer: python -m similarity users add|remove|list\n"
        body = header + "".join(f"{line}\n" for line in users.lines())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)  # mkstemp: mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.path)
        except OSError:
            Path(tmp).unlink(missing_ok=True)
            raise SimilarityError(f"Could not write the users file {self.path}.") from None
