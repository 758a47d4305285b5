"""Chargers' HTTP Basic passwords (AuthorizationKey): kept only as salted scrypt hashes.

OCPP-J / Security Whitepaper (A00.FR.202-205, A01): the Basic password is the charger's
AuthorizationKey, 16-20 bytes, which ChangeConfiguration carries as up to 40 hex digits;
the charger then authenticates with the raw bytes. So a key is *bytes* here:

- a value of hex digits (even length) is the hex form of the key: `key_bytes("3031…")`;
  any other text is the key itself, UTF-8 (plain OCPP 1.6, where the key was a string);
- a password of 32-40 hex digits in the configuration, the API or OCTT's
  BasicAuthPassword is the hex form too, shorter text is the password itself;
- a charger may present the raw bytes (the Whitepaper) or, as some do, the hex text:
  both are accepted (`presented_forms`), they are the same secret.

Hashing is scrypt with RFC 7914's interactive parameters (16 MiB, tens of ms here, a few
hundred on a Pi), as for the page's password (`edge.web.password`), stored with its
parameters so they can be raised later. Checks run in one worker thread of their own:
never on the event loop, at most one scrypt's memory at a time, and a bounded queue
(`Verifier`) so a flood of wrong passwords cannot hold the site's reconnects for long.
A key that passed once is remembered as an HMAC under a per-process random key, so a
charger's reconnects (a whole site's, after a network blip) cost no scrypt.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import secrets
import string
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Busy",
    "KeyHash",
    "Verifier",
    "generate_key",
    "key_bytes",
    "parse_basic",
    "password_key",
    "presented_forms",
]

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
DIGEST_BYTES = 32
MAX_WAITING = 64  # checks queued before new ones are refused (HTTP 503)
_HEX = frozenset(string.hexdigits)


def _is_hex(text: str) -> bool:
    return bool(text) and len(text) % 2 == 0 and all(c in _HEX for c in text)


def key_bytes(authorization_key: str) -> bytes:
    """The key a ChangeConfiguration(AuthorizationKey) value sets: hex → its bytes."""
    if _is_hex(authorization_key):
        return bytes.fromhex(authorization_key)
    return authorization_key.encode()


def password_key(password: str) -> bytes:
    """The key a configured password stands for: 32-40 hex digits → its bytes (OCTT's
    BasicAuthPassword rule), anything else → its UTF-8."""
    if 32 <= len(password) <= 40 and _is_hex(password):
        return bytes.fromhex(password)
    return password.encode()


def presented_forms(password: bytes) -> list[bytes]:
    """What a presented Basic password may stand for: itself, and for 32-40 hex digits
    the bytes they spell (a charger that sends its key's hex text)."""
    forms = [password]
    if 32 <= len(password) <= 40:
        try:
            text = password.decode("ascii")
        except UnicodeDecodeError:
            return forms
        if _is_hex(text):
            forms.append(bytes.fromhex(text))
    return forms


def generate_key() -> str:
    """A new AuthorizationKey: 20 random bytes as 40 hex digits (the longest allowed)."""
    return secrets.token_hex(20)


def parse_basic(header: str | None) -> tuple[str, bytes] | None:
    """(username, raw password bytes) of an `Authorization: Basic …` header, or None.

    The password is bytes: a Whitepaper key is 20 random bytes, seldom valid UTF-8.
    """
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic" or not token or len(token) > 1024:
        return None
    try:
        raw = base64.b64decode(token.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    user, colon, password = raw.partition(b":")
    if not colon:
        return None
    try:
        return user.decode(), password
    except UnicodeDecodeError:
        return None


@dataclass(frozen=True, slots=True)
class KeyHash:
    """A salted scrypt hash of a key; `matches` compares in constant time (slow: run it
    in the `Verifier`'s thread)."""

    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    n: int = SCRYPT_N
    r: int = SCRYPT_R
    p: int = SCRYPT_P

    @classmethod
    def of(cls, key: bytes) -> KeyHash:
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(key, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P))

    def matches(self, key: bytes) -> bool:
        return hmac.compare_digest(_scrypt(key, self.salt, self.n, self.r, self.p), self.digest)

    def to_json(self) -> dict[str, Any]:
        return {
            "scrypt": {"n": self.n, "r": self.r, "p": self.p},
            "salt": self.salt.hex(),
            "hash": self.digest.hex(),
        }

    @classmethod
    def from_json(cls, data: Any) -> KeyHash | None:
        try:
            params = data["scrypt"]
            return cls(
                bytes.fromhex(data["salt"]),
                bytes.fromhex(data["hash"]),
                int(params["n"]),
                int(params["r"]),
                int(params["p"]),
            )
        except (KeyError, TypeError, ValueError):
            return None


def _scrypt(key: bytes, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(key, salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=32)


class Busy(Exception):
    """Too many password checks are waiting; the charger should retry later."""


class Verifier:
    """Runs scrypt in one thread of its own, with a bounded queue and a cache of keys
    that passed."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-scrypt")
        self._waiting = 0
        self._secret = secrets.token_bytes(32)
        # charger id → (HMAC of a key that passed, the hash it matched): a later change of
        # the charger's hashes makes the entry useless by itself.
        self._passed: dict[str, tuple[bytes, KeyHash]] = {}

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def run(self, function: Any, *args: Any, bounded: bool = True) -> Any:
        """Run a slow function in the thread; `bounded`: refuse (Busy) when too many wait
        (a check for a connection may be refused, a key the charger accepted may not)."""
        if bounded and self._waiting >= MAX_WAITING:
            raise Busy("too many password checks waiting")
        self._waiting += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)
        finally:
            self._waiting -= 1

    def _mac(self, key: bytes) -> bytes:
        return hmac.new(self._secret, key, hashlib.sha256).digest()

    async def find(
        self, charger_id: str, presented: bytes, hashes: Iterable[KeyHash]
    ) -> KeyHash | None:
        """The hash among `hashes` that the presented password matches, in any of its
        forms (`presented_forms`); None if none does.

        Raises:
            Busy: the queue is full.
        """
        hashes = list(hashes)
        forms = presented_forms(presented)
        remembered = self._passed.get(charger_id)
        if remembered is not None and remembered[1] in hashes:
            mac = remembered[0]
            if any(hmac.compare_digest(self._mac(form), mac) for form in forms):
                return remembered[1]
        if not hashes:
            return None

        def search() -> tuple[bytes, KeyHash] | None:
            for form in forms:
                for candidate in hashes:
                    if candidate.matches(form):
                        return form, candidate
            return None

        found = await self.run(search)
        if found is None:
            return None
        form, matched = found
        self._passed[charger_id] = (self._mac(form), matched)
        return matched

    def forget(self, charger_id: str) -> None:
        self._passed.pop(charger_id, None)
