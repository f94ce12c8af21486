"""Vendor API keys, made the way Stripe and GitHub make theirs: a prefix that says what the key
is (`dfv_`), the id of its row, and a high-entropy secret. Only the secret's SHA-256 is stored;
a key is shown once, when it is made, and checked in constant time.

    dfv_<key id: 16 hex>_<secret: 43 base64url characters>
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

KEY_PREFIX = "dfv_"
_KEY = re.compile(r"^dfv_(?P<key_id>[0-9a-f]{16})_(?P<secret>[A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class NewKey:
    """A key as it is handed out once: the full text, and what the database keeps of it."""

    key_id: str
    secret_sha256: bytes
    text: str


def new_key() -> NewKey:
    """A fresh key: 16 hex digits of id, 256 bits of secret."""
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    return NewKey(key_id, secret_digest(secret), f"{KEY_PREFIX}{key_id}_{secret}")


def secret_digest(secret: str) -> bytes:
    """SHA-256 is enough for a random 256-bit secret: nothing to guess, so no slow hash needed."""
    return hashlib.sha256(secret.encode()).digest()


def parse_key(text: str) -> tuple[str, str] | None:
    """(key id, secret) of a presented key, or None when it is not shaped like one of ours."""
    match = _KEY.match(text)
    return (match["key_id"], match["secret"]) if match else None


def secret_matches(secret: str, stored_sha256: bytes) -> bool:
    return hmac.compare_digest(secret_digest(secret), stored_sha256)
