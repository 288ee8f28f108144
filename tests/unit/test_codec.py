"""The payload codec and its key ring: round trip, rotation, unknown keys, pass-through, the
failure converter, and a key ring that is missing or wrong."""

from __future__ import annotations

import base64
import json
import stat
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.exceptions import ApplicationError

from pathway.contract import Enrollment
from security.codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    data_converter,
    type_adapter,
)
from security.keyring import (
    KEY_BYTES,
    KeyRing,
    KeyRingError,
    configured_key_ring,
    ensure_key_ring_file,
    load_key_ring,
)
from tests.helpers import ROOT
from worker.settings import Settings
from workflows.models import PathwayOptions

ENROLLMENT = Enrollment(id="pt-unit-1", fracture_level="T12", height_loss_pct=25, pain_nrs=8)
REASON = "patient admitted to ward 7 after a fall at home"


def ring(*ids: str) -> KeyRing:
    """A ring with a random key per id, the last current."""
    return KeyRing(current=ids[-1], keys={i: bytes([n]) * KEY_BYTES for n, i in enumerate(ids)})


def plain(value: object) -> Payload:
    return pydantic_data_converter.payload_converter.to_payloads([value])[0]


async def test_round_trip_restores_the_payload_and_hides_its_content():
    codec = EncryptionCodec(ring("a"))
    originals = [plain(ENROLLMENT), plain({"reason": REASON}), plain(None), plain("12-week review")]
    encoded = await codec.encode(originals)
    for stored in encoded:
        assert stored.metadata["encoding"] == ENCODING and stored.metadata[KEY_ID_METADATA] == b"a"
        assert b"fracture_level" not in stored.SerializeToString() and REASON.encode() not in stored.data
    assert await codec.decode(encoded) == originals
    again = await codec.encode(originals[:1])
    assert again[0].data != encoded[0].data  # a fresh nonce each time


async def test_the_data_converter_round_trips_pydantic_values():
    converter = data_converter(ring("a"))
    [stored] = await converter.encode([ENROLLMENT])
    assert stored.metadata["encoding"] == ENCODING
    assert await converter.decode([stored], [Enrollment]) == [ENROLLMENT]


async def test_rotation_new_payloads_use_the_new_key_and_old_ones_still_decode():
    before = ring("a")
    old = await EncryptionCodec(before).encode([plain({"reason": REASON})])
    after = before.rotated("b")
    assert after.current == "b" and after.ids == ["a", "b"] and after.keys["a"] == before.keys["a"]
    codec = EncryptionCodec(after)
    new = await codec.encode([plain({"reason": REASON})])
    assert new[0].metadata[KEY_ID_METADATA] == b"b"
    assert await codec.decode(old) == await codec.decode(new) == [plain({"reason": REASON})]


async def test_a_payload_under_a_key_not_in_the_ring_fails_naming_the_key_id():
    stored = await EncryptionCodec(ring("retired-2024")).encode([plain(ENROLLMENT)])
    with pytest.raises(PayloadDecryptionError, match="retired-2024") as caught:
        await EncryptionCodec(ring("a", "b")).decode(stored)
    assert caught.value.key_id == "retired-2024" and "not in the key ring (ids: a, b)" in str(caught.value)


async def test_a_different_key_under_the_same_id_or_altered_data_fails_naming_the_key_id():
    [stored] = await EncryptionCodec(ring("a")).encode([plain(ENROLLMENT)])
    imposter = KeyRing(current="a", keys={"a": b"\x07" * KEY_BYTES})
    with pytest.raises(PayloadDecryptionError, match="'a' does not decrypt"):
        await EncryptionCodec(imposter).decode([stored])
    altered = Payload(metadata=stored.metadata, data=stored.data[:-1] + bytes([stored.data[-1] ^ 1]))
    with pytest.raises(PayloadDecryptionError, match="'a'"):
        await EncryptionCodec(ring("a")).decode([altered])


async def test_the_key_id_is_bound_to_the_ciphertext():
    both = ring("a", "b")
    [stored] = await EncryptionCodec(KeyRing(current="a", keys=both.keys)).encode([plain(ENROLLMENT)])
    relabelled = Payload(metadata={**stored.metadata, KEY_ID_METADATA: b"b"}, data=stored.data)
    with pytest.raises(PayloadDecryptionError, match="'b'"):
        await EncryptionCodec(both).decode([relabelled])


async def test_unencrypted_payloads_pass_through():
    codec = EncryptionCodec(ring("a"))
    others = [plain(ENROLLMENT), plain(None), Payload(metadata={"encoding": b"binary/plain"}, data=b"\x00\x01"),
              Payload()]
    assert await codec.decode(others) == others


async def test_failure_messages_and_stack_traces_are_encrypted():
    converter = data_converter(ring("a"))
    failure = Failure()
    try:
        raise ApplicationError(f"cannot order: {REASON}")
    except ApplicationError as exc:
        await converter.encode_failure(exc, failure)
    assert failure.message == "Encoded failure" and failure.stack_trace == ""
    assert REASON.encode() not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    restored = await converter.decode_failure(failure)
    assert REASON in str(restored)


def test_the_converter_writes_what_the_pydantic_payload_converter_writes():
    ours, sdk = data_converter(ring("a")).payload_converter, pydantic_data_converter.payload_converter
    value = [PathwayOptions(search_attributes=False), {"nrs": 3}, "text", None]
    assert ours.to_payloads(value) == sdk.to_payloads(value)
    assert ours.from_payloads(sdk.to_payloads(value), [PathwayOptions, dict, str, type(None)]) == value


def test_every_workflow_run_shares_the_type_adapters():
    # Each run gets converters of its own; the adapter for a type is built once per process.
    first, second = (data_converter(ring("a")).payload_converter_class() for _ in range(2))
    payloads = first.to_payloads([PathwayOptions(ui_metadata=False)])
    assert first.from_payloads(payloads, [PathwayOptions]) == [PathwayOptions(ui_metadata=False)]
    hits = type_adapter.cache_info().hits
    assert second.from_payloads(payloads, [PathwayOptions]) == [PathwayOptions(ui_metadata=False)]
    assert type_adapter.cache_info().hits == hits + 1


def ring_json(current: str = "k1", **keys: object) -> str:
    encoded = keys or {"k1": base64.b64encode(b"\x01" * KEY_BYTES).decode()}
    return json.dumps({"current": current, "keys": encoded})


@pytest.mark.parametrize("text, named", [
    ("{", "not valid JSON"),
    (json.dumps({"keys": {}}), '"current"'),
    (ring_json(current="k9"), "current key 'k9' is not in the key ring (ids: k1)"),
    (ring_json(k1=base64.b64encode(b"\x01" * 16).decode()), "key 'k1': expected 32 bytes (AES-256), got 16"),
    (ring_json(k1="not base64!"), "key 'k1': not valid base64"),
    (ring_json(k1=7), "key 'k1': expected base64 text"),
    (ring_json(current="bad id", **{"bad id": base64.b64encode(b"\x01" * KEY_BYTES).decode()}), "key id 'bad id'"),
    (json.dumps({"current": "k1", "keys": {}}), "holds no key"),
])  # fmt: skip
def test_an_unusable_key_ring_is_refused_naming_what_is_wrong(text, named):
    with pytest.raises(KeyRingError, match="VCF_KEY_RING") as caught:
        load_key_ring(text, Path("/nonexistent/key-ring.json"))  # the file is not consulted
    assert named in str(caught.value)


def test_errors_and_reprs_never_show_key_material():
    secret = base64.b64encode(b"\x01" * KEY_BYTES).decode()
    with pytest.raises(KeyRingError) as caught:
        KeyRing.parse(ring_json(current="k9", k1=secret), "VCF_KEY_RING")
    assert secret not in str(caught.value)
    assert secret not in repr(KeyRing.parse(ring_json(), "x")) and "\\x01" not in repr(KeyRing.parse(ring_json(), "x"))


def test_without_a_key_ring_the_error_names_the_variable_and_the_file(tmp_path):
    with pytest.raises(KeyRingError, match="VCF_KEY_RING is unset") as caught:
        load_key_ring(None, tmp_path / "key-ring.json")
    assert str(tmp_path / "key-ring.json") in str(caught.value)


def test_the_inline_ring_wins_over_the_file(tmp_path):
    ring("in-file").write(tmp_path / "key-ring.json")
    assert load_key_ring(None, tmp_path / "key-ring.json").current == "in-file"
    assert load_key_ring(ring_json(), tmp_path / "key-ring.json").current == "k1"


def test_a_ring_file_round_trips_and_is_the_owners_only(tmp_path):
    path = tmp_path / "data" / "key-ring.json"
    created, fresh = ensure_key_ring_file(path)
    assert fresh and created.current.startswith("dev-")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    again, fresh = ensure_key_ring_file(path)
    assert not fresh and again == created
    rotated = again.rotated()
    rotated.write(path)
    assert KeyRing.read(path) == rotated and stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(KeyRingError, match="already in the key ring"):
        rotated.rotated(rotated.current)


def test_settings_name_the_key_ring_and_never_show_it(tmp_path, monkeypatch):
    for name in ("VCF_KEY_RING", "VCF_KEY_RING_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VCF_DATA_DIR", str(tmp_path))
    assert Settings().key_ring_path == tmp_path / "key-ring.json"
    ring("in-data-dir").write(tmp_path / "key-ring.json")
    assert configured_key_ring(Settings()).current == "in-data-dir"
    monkeypatch.setenv("VCF_KEY_RING", ring_json())
    settings = Settings()
    assert configured_key_ring(settings).current == "k1"
    assert base64.b64encode(b"\x01" * KEY_BYTES).decode() not in repr(settings) + str(settings)


def test_one_module_builds_the_data_converter():
    """Every client, worker and replayer gets its converter from security.codec.data_converter."""
    builders = ("pydantic_data_converter", "DataConverter(", "payload_codec=")
    offenders = [f"{path.relative_to(ROOT)}: {word}"
                 for folder in ("pathway", "workflows", "activities", "worker", "cli", "api", "bench", "tests")
                 for path in (ROOT / folder).rglob("*.py") if path != Path(__file__).resolve()
                 for word in builders if word in path.read_text(encoding="utf-8")]
    assert offenders == []
