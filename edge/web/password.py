"""The technician page's password, kept only as a salted scrypt hash.

`[web] password` is hashed when the configuration is read, so the plain text lives no
longer than the TOML parser's dictionary. scrypt (stdlib) is memory-hard: a stolen hash
is expensive to attack, and one check costs tens of milliseconds here and a few hundred
on a Pi, which is also why login attempts are throttled (`edge.web.auth`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

__all__ = ["PasswordHash"]

# RFC 7914's interactive parameters: 16 MiB of memory per check.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
KEY_BYTES = 32


def _scrypt(text: str, salt: bytes) -> bytes:
    return hashlib.scrypt(
        text.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=KEY_BYTES
    )


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A salted scrypt hash; `matches` compares in constant time."""

    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)

    @classmethod
    def of(cls, text: str) -> PasswordHash:
        """Hash `text` with a fresh random salt."""
        salt = secrets.token_bytes(16)
        return cls(salt, _scrypt(text, salt))

    def matches(self, text: str) -> bool:
        """Whether `text` is the password (slow on purpose: run it off the event loop)."""
        return hmac.compare_digest(_scrypt(text, self.salt), self.digest)
