"""The payload codec: what it encrypts comes back; rotation keeps old payloads readable; an
unknown key or an altered payload is a clear error, never garbage."""

from __future__ import annotations

import base64
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.exceptions import ApplicationError

from dealflow.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKey,
    new_payload_key,
    parse_payload_keys,
)
from dealflow.settings import Settings
from dealflow.temporal import data_converter

SOW = b'{"sow": "Vera will build a small website for Casey", "email": "casey@client.example"}'


def key(key_id: str) -> PayloadKey:
    return PayloadKey(key_id, os.urandom(32))


def plain() -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=SOW)


async def test_a_payload_comes_back_as_it_was_and_is_not_in_clear_between() -> None:
    codec = EncryptionCodec([key("k1")])
    [sealed] = await codec.encode([plain()])
    assert sealed.metadata["encoding"] == ENCODING and sealed.metadata[KEY_ID_METADATA] == b"k1"
    assert b"casey" not in sealed.SerializeToString() and b"json/plain" not in sealed.data
    assert await codec.decode([sealed]) == [plain()]


async def test_the_same_payload_encrypts_differently_each_time() -> None:
    codec = EncryptionCodec([key("k1")])
    first, second = await codec.encode([plain(), plain()])
    assert first.data != second.data


async def test_after_a_rotation_new_payloads_use_the_new_key_and_old_ones_still_decrypt() -> None:
    old, new = key("k2025"), key("k2026")
    [from_before] = await EncryptionCodec([old]).encode([plain()])
    rotated = EncryptionCodec([new, old])
    [from_now] = await rotated.encode([plain()])
    assert from_now.metadata[KEY_ID_METADATA] == b"k2026"
    assert await rotated.decode([from_before, from_now]) == [plain(), plain()]


async def test_a_payload_of_an_unknown_key_id_is_a_clear_error() -> None:
    [sealed] = await EncryptionCodec([key("retired")]).encode([plain()])
    with pytest.raises(PayloadDecryptionError, match="key 'retired', which DEALFLOW_PAYLOAD_KEYS does not list"):
        await EncryptionCodec([key("k2026")]).decode([sealed])


async def test_altered_ciphertext_fails_authentication() -> None:
    codec = EncryptionCodec([key("k1")])
    [sealed] = await codec.encode([plain()])
    data = bytearray(sealed.data)
    data[-20] ^= 0x01
    sealed.data = bytes(data)
    with pytest.raises(PayloadDecryptionError, match="fails authentication"):
        await codec.decode([sealed])


async def test_a_payload_relabelled_with_another_key_id_fails_even_under_the_same_secret() -> None:
    """The key id is the cipher's associated data: metadata cannot be swapped unnoticed."""
    first = key("k1")
    codec = EncryptionCodec([first, PayloadKey("k2", first.secret)])
    [sealed] = await codec.encode([plain()])
    sealed.metadata[KEY_ID_METADATA] = b"k2"
    with pytest.raises(PayloadDecryptionError, match="key 'k2' fails authentication"):
        await codec.decode([sealed])


async def test_payloads_recorded_before_encryption_pass_through_decode() -> None:
    assert await EncryptionCodec([key("k1")]).decode([plain()]) == [plain()]


def test_a_new_key_parses_and_is_random() -> None:
    first, second = new_payload_key(), new_payload_key()
    [parsed] = parse_payload_keys(first)
    assert len(parsed.secret) == 32 and first != second
    assert base64.b64encode(parsed.secret).decode() not in repr(parsed)


async def test_failures_carry_their_message_and_stack_trace_encrypted() -> None:
    settings = Settings(_env_file=None, DEALFLOW_PAYLOAD_KEYS=new_payload_key())
    converter = data_converter(settings)
    failure = Failure()
    await converter.encode_failure(ApplicationError("casey@client.example refused the SOW"), failure)
    assert failure.message == "Encoded failure"
    assert b"casey" not in failure.SerializeToString()
    decoded = await converter.decode_failure(failure)
    assert str(decoded) == "casey@client.example refused the SOW"


def test_without_keys_the_converter_is_the_plain_pydantic_one() -> None:
    converter = data_converter(Settings(_env_file=None))
    assert converter.payload_codec is None
