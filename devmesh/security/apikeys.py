"""API key format and hashing. Pure functions, no I/O.

A key reads ``dmk_<prefix>_<secret>``. The prefix is public and finds the row;
the secret is 256 random bits and only its salted HMAC-SHA256 is stored. A slow
password hash would buy nothing against a 256-bit secret and would cost every
request, so a fast keyed hash with a per-key salt is the right tool here.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

__all__ = ["GeneratedKey", "generate_key", "hash_secret", "split_key", "verify_secret"]

_SCHEME = "dmk"
_PREFIX_BYTES = 8
_SECRET_BYTES = 32


@dataclass(frozen=True)
class GeneratedKey:
    plaintext: str
    prefix: str
    salt: bytes
    secret_hash: bytes


def hash_secret(secret: str, salt: bytes) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def generate_key() -> GeneratedKey:
    prefix = secrets.token_hex(_PREFIX_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    salt = secrets.token_bytes(16)
    return GeneratedKey(
        plaintext=f"{_SCHEME}_{prefix}_{secret}",
        prefix=prefix,
        salt=salt,
        secret_hash=hash_secret(secret, salt),
    )


def split_key(raw: str) -> tuple[str, str] | None:
    """``(prefix, secret)``, or ``None`` when ``raw`` is not shaped like one of our keys."""
    scheme, sep, rest = raw.partition("_")
    prefix, sep2, secret = rest.partition("_")
    if scheme != _SCHEME or not sep or not sep2 or len(prefix) != 2 * _PREFIX_BYTES or not secret:
        return None
    return prefix, secret


def verify_secret(secret: str, *, salt: bytes, expected: bytes) -> bool:
    return hmac.compare_digest(hash_secret(secret, salt), expected)
