from __future__ import annotations

import base64
import contextlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.crypto import AccountKeys
from medchain.gateway import (
    MAX_OBSERVATION_BYTES,
    BadReading,
    Reading,
    SequenceGuard,
    SignedReading,
    decode_signed_reading,
    encode_signed_reading,
    reading_from_json,
    reading_id,
    reading_signing_bytes,
    reading_to_json,
    readings_from_json_array,
    sign_reading,
    verify_reading,
)
from medchain.types import MedchainError

KEYS = AccountKeys(bytes(range(32)), bytes(range(32, 64)))
OBS = b'{"resourceType":"Observation"}'


def signed(seq: int = 7, obs: bytes = OBS) -> SignedReading:
    return sign_reading(KEYS, seq, 1_714_550_400_000, obs)


def test_sign_verify_round_trip_and_id() -> None:
    s = signed()
    verify_reading(s)
    assert s.reading.device == KEYS.public_key
    assert reading_signing_bytes(s.reading).startswith(b"medchain/reading/v1\0")
    assert s.reading_id == reading_id(s.reading) and len(s.reading_id) == 32
    assert signed(8).reading_id != s.reading_id
    assert decode_signed_reading(encode_signed_reading(s)) == s
    assert reading_from_json(reading_to_json(s)) == s


def test_every_flipped_byte_of_the_encoding_is_refused() -> None:
    data = encode_signed_reading(signed())
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            bad = data[:i] + bytes([data[i] ^ bit]) + data[i + 1 :]
            with pytest.raises(BadReading) as info:
                verify_reading(decode_signed_reading(bad))
            assert info.value.code in ("malformed", "bad_signature")


def test_another_key_cannot_sign_for_a_device() -> None:
    s = signed()
    forged = SignedReading(s.reading, AccountKeys.generate().sign(reading_signing_bytes(s.reading)))
    with pytest.raises(BadReading, match="does not verify") as info:
        verify_reading(forged)
    assert info.value.code == "bad_signature"
    assert isinstance(info.value, MedchainError)


def test_constructor_bounds() -> None:
    with pytest.raises(BadReading) as info:
        Reading(KEYS.public_key, 0, 0, b"x" * (MAX_OBSERVATION_BYTES + 1))
    assert info.value.code == "too_large"
    Reading(KEYS.public_key, 0, 0, b"x" * MAX_OBSERVATION_BYTES)
    for bad in (
        dict(device=b"\x00" * 31),
        dict(sequence=-1),
        dict(sequence=2**64),
        dict(timestamp_ms=-5),
        dict(sequence=True),
    ):
        fields = dict(device=KEYS.public_key, sequence=0, timestamp_ms=0, observation=OBS)
        fields.update(bad)
        with pytest.raises(BadReading) as info:
            Reading(**fields)  # type: ignore[arg-type]
        assert info.value.code == "malformed"
    with pytest.raises(BadReading, match="64 bytes"):
        SignedReading(signed().reading, b"\x00" * 63)


def test_sequence_guard_refuses_replays_without_burning_numbers() -> None:
    guard = SequenceGuard()
    first, second = signed(5).reading, signed(6).reading
    guard.check(first)
    guard.record(first)
    assert guard.last(KEYS.public_key) == 5
    for again in (first, signed(4).reading):
        with pytest.raises(BadReading, match="not above") as info:
            guard.check(again)
        assert info.value.code == "replayed"
    guard.check(second)
    guard.record(first)  # recording an older number never lowers the mark
    assert guard.last(KEYS.public_key) == 5
    other = sign_reading(AccountKeys.generate(), 0, 0, OBS).reading
    guard.check(other)  # devices are independent


def body(**changes: object) -> bytes:
    obj: dict[str, object] = json.loads(reading_to_json(signed()))
    obj.update(changes)
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[]", "JSON object"),
        (b"{", "not valid JSON"),
        (b"\xff", "not valid JSON"),
        (body(extra=1), "unknown"),
        (body(v=2), "version"),
        (body(seq="7"), "integer"),
        (body(seq=7.0), "integer"),
        (body(seq=True), "integer"),
        (body(seq=-1), "sequence"),
        (body(device="AB" * 32), "lower-case hex"),
        (body(device="ab" * 31 + " a"), "lower-case hex"),
        (body(sig="00" * 63), "hex digits"),
        (body(obs="!!!!"), "base64"),
        (body(obs="eA=="[:-1] + "B"), "base64"),
        (body(obs="eR=="), "canonical base64"),
        (body(ts=float("nan")), "not valid JSON"),
    ],
)
def test_json_form_refuses_malformed_input(data: bytes, message: str) -> None:
    with pytest.raises(BadReading, match=message) as info:
        reading_from_json(data)
    assert info.value.code == "malformed"


def test_json_form_refuses_duplicate_and_missing_keys_and_oversize() -> None:
    text = reading_to_json(signed()).decode()
    with pytest.raises(BadReading, match="twice"):
        reading_from_json(text[:-1] + ',"seq":1}')
    with pytest.raises(BadReading, match="missing"):
        reading_from_json('{"v":1}')
    with pytest.raises(BadReading) as info:
        reading_from_json(b" " * 20_000)
    assert info.value.code == "too_large"
    big = base64.b64encode(b"x" * (MAX_OBSERVATION_BYTES + 1)).decode()
    with pytest.raises(BadReading) as info:
        reading_from_json(body(obs=big))
    assert info.value.code == "too_large"


def test_oversized_binary_is_refused_before_decoding() -> None:
    with pytest.raises(BadReading) as info:
        decode_signed_reading(b"\x00" * 20_000)
    assert info.value.code == "too_large"


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_hostile_binary_only_raises_bad_reading(data: bytes) -> None:
    with contextlib.suppress(BadReading):
        decode_signed_reading(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@settings(max_examples=300)
@given(
    st.dictionaries(
        st.sampled_from(["v", "device", "seq", "ts", "obs", "sig", "x"]), json_values, max_size=7
    )
)
def test_hostile_json_only_raises_bad_reading(obj: dict[str, object]) -> None:
    with contextlib.suppress(BadReading):
        reading_from_json(json.dumps(obj))


@settings(max_examples=200)
@given(st.integers(0, 2**64 - 1), st.integers(0, 2**63 - 1), st.binary(max_size=300))
def test_json_and_binary_round_trip(seq: int, ts: int, obs: bytes) -> None:
    s = sign_reading(KEYS, seq, ts, obs)
    assert reading_from_json(reading_to_json(s)) == s
    assert decode_signed_reading(encode_signed_reading(s)) == s
    verify_reading(reading_from_json(reading_to_json(s)))


def test_json_array_parses_each_reading_and_reports_bad_ones_in_place() -> None:
    good = [signed(seq) for seq in (1, 2)]
    items = [json.loads(reading_to_json(good[0])), {"v": 1}, json.loads(reading_to_json(good[1]))]
    results = readings_from_json_array(json.dumps(items).encode(), 10)
    assert results[0] == good[0] and results[2] == good[1]
    assert isinstance(results[1], BadReading) and results[1].code == "malformed"
    with pytest.raises(BadReading, match="at most 2 readings") as info:
        readings_from_json_array(json.dumps(items).encode(), 2)
    assert info.value.code == "too_many"
    with pytest.raises(BadReading, match="must be a JSON array"):
        readings_from_json_array(b'{"v": 1}', 10)
    with pytest.raises(BadReading, match="appears twice"):
        readings_from_json_array(b'[{"v": 1, "v": 1}]', 10)
