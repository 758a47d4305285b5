"""The technician page's password, kept only as a salted scrypt hash.

`[web] password` is hashed when the configuration is read, so the plain text lives no
longer than the TOML parser's dictionary. The hash is a charger key's (`KeyHash`, RFC
7914's interactive scrypt parameters) of the password's UTF-8: memory-hard, so a stolen
hash is expensive to attack, and one check costs tens of milliseconds here and a few
hundred on a Pi, which is also why login attempts are throttled (`edge.web.auth`).
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.security.credentials import KeyHash

__all__ = ["PasswordHash"]


@dataclass(frozen=True, slots=True)
class PasswordHash:
    """A salted scrypt hash of a password; `matches` compares in constant time."""

    key: KeyHash

    @classmethod
    def of(cls, text: str) -> PasswordHash:
        """Hash `text` with a fresh random salt."""
        return cls(KeyHash.of(text.encode()))

    @property
    def salt(self) -> bytes:
        return self.key.salt

    def matches(self, text: str) -> bool:
        """Whether `text` is the password (slow on purpose: run it off the event loop)."""
        return self.key.matches(text.encode())
