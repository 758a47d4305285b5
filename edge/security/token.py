"""The operator API's Bearer token, kept only as a salted hash, compared in constant time,
rotatable while the service runs.

Where the token comes from, in this order:
1. `[web] api_token` in the configuration: hashed at start-up, the plain text kept nowhere
   by the service (the operator keeps it in the file). It cannot be rotated from here:
   the configuration would bring the old one back at the next start.
2. `<data_dir>/api_token.hash`, written by `edge-csms token rotate` or
   `POST /api/token/rotate`. A plain-text `<data_dir>/api_token` of an earlier version is
   migrated into it at start-up and removed.
3. Neither: there is no token until the operator makes one with `edge-csms token rotate`
   (the service never writes or logs a token it made up: nobody could read it but an
   attacker with the disk or the log).

The hash: HMAC-SHA-256 keyed with a random 16-byte salt. A generated token has 256 random
bits, so a slow hash would add nothing but milliseconds on every API request of a Pi.

The service notices a rotation made by the command line at the next request (the file's
stat changes), so the old token stops working at once there too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from edge.store.atomic import fsync_directory, write_atomic

__all__ = [
    "HASH_FILE",
    "LEGACY_FILE",
    "TokenError",
    "TokenHash",
    "TokenStore",
    "new_token",
]

log = logging.getLogger("edge.security")

HASH_FILE = "api_token.hash"
LEGACY_FILE = "api_token"


class TokenError(Exception):
    """The token cannot be rotated or read (the message says why, never the token)."""


def new_token() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class TokenHash:
    """A salted HMAC-SHA-256 of a token; `matches` compares in constant time."""

    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)

    @classmethod
    def of(cls, token: str) -> TokenHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _digest(salt, token))

    def matches(self, given: str) -> bool:
        return hmac.compare_digest(_digest(self.salt, given), self.digest)

    def to_json(self) -> bytes:
        document = {"scheme": "hmac-sha256", "salt": self.salt.hex(), "digest": self.digest.hex()}
        return (json.dumps(document) + "\n").encode()

    @classmethod
    def from_json(cls, data: bytes) -> TokenHash:
        try:
            document = json.loads(data)
            if document.get("scheme") != "hmac-sha256":
                raise ValueError("unknown scheme")
            return cls(bytes.fromhex(document["salt"]), bytes.fromhex(document["digest"]))
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            raise TokenError(f"unreadable token hash ({type(err).__name__})") from None


def _digest(salt: bytes, token: str) -> bytes:
    # surrogatepass: a header value never has lone surrogates, but a JSON login body may.
    return hmac.new(salt, token.encode("utf-8", "surrogatepass"), hashlib.sha256).digest()


class TokenStore:
    """The API token of one service: checked on every request, rotated on demand."""

    def __init__(self, data_dir: Path, configured: str | None = None) -> None:
        self.path = data_dir / HASH_FILE
        self.configured = configured is not None
        self._hash: TokenHash | None = TokenHash.of(configured) if configured else None
        self._stat: tuple[int, int, int] | None = None
        if not self.configured:
            self._migrate(data_dir / LEGACY_FILE)
            self._reload()

    @property
    def exists(self) -> bool:
        self._reload()
        return self._hash is not None

    def matches(self, given: str) -> bool:
        """Whether `given` is the current token (constant time)."""
        self._reload()
        current = self._hash
        if current is None:
            # Same work as a comparison, so timing tells nothing either way.
            TokenHash(b"\0" * 16, b"\0" * 32).matches(given)
            return False
        return current.matches(given)

    def rotate(self) -> str:
        """Make a new token, store its hash, and return it (the only time it is seen).

        Raises:
            TokenError: the token is set in the configuration, or the file cannot be written.
        """
        if self.configured:
            raise TokenError(
                "the API token is set in the configuration ([web] api_token): change it there"
            )
        first = not self.exists
        token = new_token()
        hashed = TokenHash.of(token)
        try:
            write_hash(self.path, hashed)
        except OSError as err:
            raise TokenError(f"cannot write {self.path} ({err.strerror})") from None
        self._hash = hashed
        self._stat = _stat_of(self.path)
        if first:
            log.info("API token made (only its hash is kept, in %s)", self.path)
        else:
            log.warning("API token rotated: the previous token no longer works")
        return token

    def _reload(self) -> None:
        """Re-read the hash file when it changed (a rotation by the command line)."""
        if self.configured:
            return
        stat = _stat_of(self.path)
        if stat == self._stat:
            return
        self._stat = stat
        if stat is None:
            self._hash = None
            return
        try:
            self._hash = TokenHash.from_json(self.path.read_bytes())
        except (OSError, TokenError) as err:
            log.error("cannot read %s (%s): the API refuses every token", self.path, err)
            self._hash = None

    def _migrate(self, legacy: Path) -> None:
        """An earlier version's plain-text token file becomes the hash file."""
        try:
            token = legacy.read_text().strip()
        except FileNotFoundError:
            return
        except OSError as err:
            log.error("cannot read %s (%s)", legacy, err.strerror)
            return
        if token and not self.path.exists():
            write_hash(self.path, TokenHash.of(token))
            log.info("API token in %s moved into %s (hashed)", legacy, self.path)
        legacy.unlink()
        with contextlib.suppress(OSError):
            fsync_directory(legacy.parent)


def write_hash(path: Path, hashed: TokenHash) -> None:
    """Write the hash file (mode 0600), owned like its directory when root writes it, so a
    service running as its own user can read what `sudo edge-csms token rotate` wrote."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, hashed.to_json(), mode=0o600)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        owner = path.parent.stat()
        with contextlib.suppress(OSError):
            os.chown(path, owner.st_uid, owner.st_gid)


def _stat_of(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)
