"""Payload encryption (AES-256-GCM with named keys), so that Temporal's store holds no SOW text,
name or address in clear, and a key can be rotated without losing what older keys encrypted.

`DEALFLOW_PAYLOAD_KEYS` lists `key-id:base64-key` pairs: the first key encrypts, every key
decrypts. Each encrypted payload names its key in its metadata; the key id is also the cipher's
associated data, so a payload relabelled with another key id fails as a tampered one does.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
KEY_BYTES = 32
_NONCE_BYTES = 12
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


class PayloadKeyError(ValueError):
    """DEALFLOW_PAYLOAD_KEYS is malformed; the message says which entry and why."""


class PayloadDecryptionError(ValueError):
    """An encrypted payload this process cannot decrypt: its key is unknown, or it was altered."""


@dataclass(frozen=True)
class PayloadKey:
    key_id: str
    secret: bytes

    def __repr__(self) -> str:  # never print the key itself
        return f"PayloadKey({self.key_id!r})"


def parse_payload_keys(value: str) -> list[PayloadKey]:
    """`id1:base64,id2:base64` as keys, the encrypting one first; PayloadKeyError otherwise."""
    keys: list[PayloadKey] = []
    for position, entry in enumerate((part.strip() for part in value.split(",")), start=1):
        key_id, separator, encoded = entry.partition(":")
        if not separator or not _KEY_ID.fullmatch(key_id):
            raise PayloadKeyError(
                f"entry {position} is not `key-id:base64-key` (a key id of letters, digits, '.', '_', '-')"
            )
        try:
            secret = base64.b64decode(encoded, validate=True)
        except binascii.Error as error:
            raise PayloadKeyError(f"key {key_id!r} is not valid base64") from error
        if len(secret) != KEY_BYTES:
            raise PayloadKeyError(
                f"key {key_id!r} has {len(secret)} bytes; AES-256 needs {KEY_BYTES} random bytes"
            )
        if any(key.key_id == key_id for key in keys):
            raise PayloadKeyError(f"key id {key_id!r} is listed twice")
        keys.append(PayloadKey(key_id, secret))
    return keys


def new_payload_key(now: datetime | None = None) -> str:
    """A fresh `key-id:base64-key` entry, its id the day it was made (`k20260301-1a2b`)."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    secret = base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()
    return f"k{day}-{secrets.token_hex(2)}:{secret}"


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the first key; decrypts with whichever key a payload names.

    Payloads that are not encrypted pass through decode unchanged: histories recorded before
    encryption was turned on stay readable."""

    def __init__(self, keys: Sequence[PayloadKey]) -> None:
        if not keys:
            raise PayloadKeyError("at least one key is needed")
        super().__init__()
        self._encrypting = keys[0].key_id
        self._ciphers = {key.key_id: AESGCM(key.secret) for key in keys}

    @property
    def encrypting_key_id(self) -> str:
        return self._encrypting

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        cipher, key_id = self._ciphers[self._encrypting], self._encrypting.encode()
        encoded = []
        for payload in payloads:
            nonce = os.urandom(_NONCE_BYTES)
            sealed = cipher.encrypt(nonce, payload.SerializeToString(), key_id)
            encoded.append(
                Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id}, data=nonce + sealed)
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self._decrypt(p) if p.metadata.get("encoding") == ENCODING else p for p in payloads]

    def _decrypt(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(
                f"payload encrypted with key {key_id!r}, which DEALFLOW_PAYLOAD_KEYS does not list "
                f"(it lists {', '.join(sorted(self._ciphers))}); add that key back to decrypt it"
            )
        nonce, sealed = payload.data[:_NONCE_BYTES], payload.data[_NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except InvalidTag as error:
            raise PayloadDecryptionError(
                f"payload encrypted with key {key_id!r} fails authentication: it was altered, "
                "or another key carries that id"
            ) from error
