"""The AES-256-GCM payload codec, and the data converter every client, worker and replayer uses.

An encrypted payload is ``{"metadata": {"encoding": "binary/encrypted", "encryption-key-id":
<id>}, "data": nonce (12 bytes) + ciphertext and tag}``; the plaintext is the whole original
payload (its metadata too, so the encoding the payload converter chose is hidden and restored),
and the key id is authenticated with it (associated data), so a payload cannot be passed off as
encrypted under another key.

Decoding passes through any payload that is not ``binary/encrypted``: histories written before
encryption was switched on still replay, and pathways running then keep going. A payload
encrypted under a key the ring does not hold, or one that does not decrypt with the ring's key
of that id, raises :class:`PayloadDecryptionError` naming the key id.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from google.protobuf.message import DecodeError
from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter, pydantic_data_converter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    EncodingPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)

from security.keyring import KeyRing

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12


class PayloadDecryptionError(ValueError):
    """An encrypted payload this key ring cannot decrypt; ``key_id`` names the key it needs."""

    def __init__(self, key_id: str, message: str):
        super().__init__(message)
        self.key_id = key_id


class EncryptionCodec(PayloadCodec):
    """Encrypts every payload with the ring's current key; decrypts with the key each names."""

    def __init__(self, ring: KeyRing):
        self.ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys.items()}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        """``payload`` encrypted with the current key."""
        key_id = self.ring.current
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The original of an encrypted payload; any other payload as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            named = f"key id {key_id!r}" if key_id else "no key id"
            raise PayloadDecryptionError(key_id, f"payload encrypted with {named}, which is not in the key ring "
                                                 f"(ids: {', '.join(self.ring.ids)}); add that key back to the ring")
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
            return Payload.FromString(plain)
        except (InvalidTag, ValueError, DecodeError):
            raise PayloadDecryptionError(key_id, f"payload encrypted with key id {key_id!r} does not decrypt with "
                                                 "the ring's key of that id (a different key under the same id, "
                                                 "or altered data)") from None


@functools.lru_cache(maxsize=1024)
def type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    """The pydantic adapter of ``type_hint``, built once per process (a hashable hint)."""
    return TypeAdapter(type_hint)


class _PydanticJSON(PydanticJSONPlainPayloadConverter):
    """The SDK's pydantic JSON converter with one type adapter per type for the whole process.
    The SDK caches adapters per converter, and every workflow run has converters of its own: each
    cached pathway built, and kept, adapters for its input, its signals and its activity results."""

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        """The payload's JSON as ``type_hint`` (any JSON value without one)."""
        hint = type_hint if type_hint is not None else Any
        try:
            adapter = type_adapter(hint)
        except TypeError:
            try:
                hash(hint)
            except TypeError:  # an unhashable hint: no cache
                adapter = TypeAdapter(hint)
            else:
                raise
        return adapter.validate_json(payload.data)


@functools.cache
def _encoding_converters() -> tuple[EncodingPayloadConverter, ...]:
    """The encoding converters, made once per process: they keep no state of their own."""
    json = _PydanticJSON()
    return tuple(json if isinstance(c, JSONPlainPayloadConverter) else c
                 for c in DefaultPayloadConverter.default_encoding_payload_converters)


class PayloadConverter(CompositePayloadConverter):
    """The SDK's pydantic payload converter, its type adapters shared (:class:`_PydanticJSON`).
    The SDK makes one for every workflow activation; the pydantic converter inside it is shared,
    since building one (its JSON serializer) cost more than most activations' own work."""

    def __init__(self) -> None:
        super().__init__(*_encoding_converters())


def data_converter(ring: KeyRing) -> DataConverter:
    """The pydantic data converter, with payloads encrypted by ``ring`` and failure messages and
    stack traces moved into (encrypted) encoded attributes."""
    return dataclasses.replace(pydantic_data_converter, payload_converter_class=PayloadConverter,
                               payload_codec=EncryptionCodec(ring),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
