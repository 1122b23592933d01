"""The signed reading a device sends to its edge gateway.

A reading is (device key, sequence number, device time, FHIR Observation bytes), signed
with the device's Ed25519 key over domain-separated bytes, so a reading signature can
never pass for a transaction or a vote. The sequence number rises strictly per device:
it is the replay guard, and it is signed, so nobody can renumber a captured reading.

Everything that arrives from the network is parsed strictly and bounded in size; each
refusal is a `BadReading` whose `code` says which rule broke (the gateway turns
refusals into strikes against the device).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any, TypeVar

from medchain.crypto import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, AccountKeys, verify_signature
from medchain.types import DecodeError, MedchainError, decode, encode, tagged_hash

READING_DOMAIN = b"medchain/reading/v1\0"
READING_ID_TAG = "medchain/reading-id"
MAX_OBSERVATION_BYTES = 8 * 1024
MAX_SEQUENCE = 2**64 - 1
MAX_TIMESTAMP_MS = 2**63 - 1
# base64 of the largest observation plus hex keys, signature and JSON punctuation.
MAX_JSON_BYTES = 4 * ((MAX_OBSERVATION_BYTES + 2) // 3) + 512
MAX_ENCODED_BYTES = MAX_OBSERVATION_BYTES + 256
JSON_VERSION = 1
X = TypeVar("X")
T = TypeVar("T")
_LOWER_HEX = re.compile(r"[0-9a-f]*")
_JSON_KEYS = frozenset({"v", "device", "seq", "ts", "obs", "sig"})


class BadReading(MedchainError):
    """A reading the gateway refuses; `code` names the rule (malformed, too_large,
    bad_signature, replayed, non_conforming, ...) so callers can count strikes by kind."""

    code = "bad_reading"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


@dataclass(frozen=True)
class Reading:
    """What a device signs. `observation` is the FHIR Observation as canonical JSON bytes
    (medchain.client.canonical_json), so its hash is reproducible by every reader."""

    device: bytes
    sequence: int
    timestamp_ms: int
    observation: bytes

    def __post_init__(self) -> None:
        if type(self.device) is not bytes or len(self.device) != PUBLIC_KEY_SIZE:
            raise BadReading(
                f"the device key must be {PUBLIC_KEY_SIZE} bytes (an Ed25519 public key)",
                code="malformed",
            )
        if type(self.sequence) is not int or not 0 <= self.sequence <= MAX_SEQUENCE:
            raise BadReading(
                f"the sequence number must be an integer from 0 to {MAX_SEQUENCE}",
                code="malformed",
            )
        if type(self.timestamp_ms) is not int or not 0 <= self.timestamp_ms <= MAX_TIMESTAMP_MS:
            raise BadReading(
                "the timestamp must be milliseconds since the Unix epoch, a non-negative "
                "64-bit integer",
                code="malformed",
            )
        if type(self.observation) is not bytes:
            raise BadReading("the observation must be bytes", code="malformed")
        if len(self.observation) > MAX_OBSERVATION_BYTES:
            raise BadReading(
                f"the observation is {len(self.observation)} bytes, over the limit of "
                f"{MAX_OBSERVATION_BYTES}; send one measurement per reading",
                code="too_large",
            )

    @cached_property
    def signing_bytes(self) -> bytes:
        """Computed once: the id, the signature check and the batch all need it."""
        return READING_DOMAIN + encode(self)


@dataclass(frozen=True)
class SignedReading:
    """A reading and the device's Ed25519 signature over `reading_signing_bytes`."""

    reading: Reading
    signature: bytes

    def __post_init__(self) -> None:
        if type(self.signature) is not bytes or len(self.signature) != SIGNATURE_SIZE:
            raise BadReading(
                f"the signature must be {SIGNATURE_SIZE} bytes (Ed25519)", code="malformed"
            )

    @cached_property
    def reading_id(self) -> bytes:
        return reading_id(self.reading)

    @cached_property
    def encoded(self) -> bytes:
        """The canonical binary form, computed once: the index stores it and the batch's
        bundles embed it (the codec splices it in)."""
        return encode(self)


def reading_signing_bytes(reading: Reading) -> bytes:
    """The bytes a device signs: a domain tag, then the reading's canonical encoding."""
    return reading.signing_bytes


def reading_id(reading: Reading) -> bytes:
    """The 32-byte id of a reading: a tagged hash of its signed bytes. The signature is
    left out, so one reading has one id however it was signed."""
    return tagged_hash(READING_ID_TAG, reading_signing_bytes(reading))


def sign_reading(
    keys: AccountKeys, sequence: int, timestamp_ms: int, observation: bytes
) -> SignedReading:
    """Build and sign a reading from the device holding `keys`."""
    reading = Reading(keys.public_key, sequence, timestamp_ms, observation)
    return SignedReading(reading, keys.sign(reading_signing_bytes(reading)))


def verify_reading(signed: SignedReading) -> None:
    """Check the device's signature; raise BadReading(code="bad_signature") if it fails.

    Registration, replay and the observation's content are checked by the caller: this
    only proves that the holder of `signed.reading.device` sent exactly these bytes."""
    if not verify_signature(
        signed.reading.device, reading_signing_bytes(signed.reading), signed.signature
    ):
        raise BadReading(
            "the reading's signature does not verify with its device key; the reading was "
            "changed in transit or signed with another key",
            code="bad_signature",
        )


def encode_signed_reading(signed: SignedReading) -> bytes:
    """The canonical binary form (RLP), e.g. for storage or MQTT binary payloads."""
    return signed.encoded


def decode_signed_reading(data: bytes) -> SignedReading:
    """Parse `encode_signed_reading` output strictly; anything else raises BadReading."""
    if len(data) > MAX_ENCODED_BYTES:
        raise BadReading(
            f"the encoded reading is {len(data)} bytes, over the limit of {MAX_ENCODED_BYTES}",
            code="too_large",
        )
    try:
        return decode(SignedReading, data)
    except DecodeError as exc:
        raise BadReading(
            f"not an encoded signed reading: {exc.message}", code="malformed"
        ) from None


class SequenceGuard:
    """The replay guard: the highest sequence number accepted from each device.

    `check` raises before anything is recorded, and `record` is called only once the
    reading is accepted, so a refused reading never burns a sequence number."""

    def __init__(self, last: dict[bytes, int] | None = None) -> None:
        self._last: dict[bytes, int] = dict(last or {})

    def last(self, device: bytes) -> int | None:
        return self._last.get(device)

    def check(self, reading: Reading) -> None:
        last = self._last.get(reading.device)
        if last is not None and reading.sequence <= last:
            raise BadReading(
                f"sequence number {reading.sequence} is not above the device's last accepted "
                f"{last}: a replayed or reordered reading",
                code="replayed",
            )

    def record(self, reading: Reading) -> None:
        last = self._last.get(reading.device)
        if last is None or reading.sequence > last:
            self._last[reading.device] = reading.sequence


# --- the JSON form (HTTP bodies and MQTT payloads) -------------------------------------


def reading_to_json(signed: SignedReading) -> bytes:
    """Compact JSON: hex device key and signature, base64 observation bytes (kept as bytes
    so the signature still covers exactly what the device signed)."""
    r = signed.reading
    body = {
        "v": JSON_VERSION,
        "device": r.device.hex(),
        "seq": r.sequence,
        "ts": r.timestamp_ms,
        "obs": base64.b64encode(r.observation).decode("ascii"),
        "sig": signed.signature.hex(),
    }
    return json.dumps(body, separators=(",", ":")).encode("ascii")


def reading_from_json(data: bytes | str) -> SignedReading:
    """Parse the JSON form strictly: exactly the known keys once each, exact types,
    lower-case hex of the right length, canonical base64, bounded size."""
    if len(data) > MAX_JSON_BYTES:
        raise BadReading(
            f"the reading is {len(data)} bytes of JSON, over the limit of {MAX_JSON_BYTES}",
            code="too_large",
        )
    return reading_from_object(_strict_json(data, "the reading"))


def readings_from_json_array(
    data: bytes | str, max_readings: int
) -> list[SignedReading | BadReading]:
    """Parse a JSON array of readings (one request from a hub relaying several devices)
    with the same strictness, once: one result per element, a BadReading for each bad
    one, so the good ones still go through. BadReading for the whole if it is not an
    array of at most `max_readings`."""
    if len(data) > MAX_JSON_BYTES * max_readings:
        raise BadReading(
            f"the request is {len(data)} bytes of JSON, over the limit of "
            f"{MAX_JSON_BYTES * max_readings} for {max_readings} readings",
            code="too_large",
        )
    items = _strict_json(data, "the request")
    if not isinstance(items, list):
        raise BadReading("the request must be a JSON array of readings", code="malformed")
    if len(items) > max_readings:
        raise BadReading(
            f"send at most {max_readings} readings per request, not {len(items)}",
            code="too_many",
        )
    return each_or_refusal(items, reading_from_object)


def each_or_refusal(items: Iterable[X], check: Callable[[X], T]) -> list[T | BadReading]:
    """`check` applied to each item, a BadReading in place of each it refuses: one bad
    reading among many never costs the others."""
    results: list[T | BadReading] = []
    for item in items:
        try:
            results.append(check(item))
        except BadReading as exc:
            results.append(exc)
    return results


def _strict_json(data: bytes | str, what: str) -> Any:
    try:
        text = data.decode("utf-8") if isinstance(data, bytes) else data
        return json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise BadReading(f"{what} is not valid JSON: {exc}", code="malformed") from None


def reading_from_object(obj: object) -> SignedReading:
    """A reading from its parsed JSON form (see `reading_from_json`)."""
    if not isinstance(obj, dict):
        raise BadReading("the reading must be a JSON object", code="malformed")
    keys = set(obj)
    if keys != _JSON_KEYS:
        missing = sorted(_JSON_KEYS - keys)
        extra = sorted(keys - _JSON_KEYS)
        parts = ([f"missing {missing}"] if missing else []) + (
            [f"unknown {extra}"] if extra else []
        )
        raise BadReading(
            f"the reading's keys are wrong ({'; '.join(parts)}); expected exactly "
            f"{sorted(_JSON_KEYS)}",
            code="malformed",
        )
    if _int_field(obj, "v") != JSON_VERSION:
        raise BadReading(
            f"unsupported reading format version {obj['v']}; this gateway speaks {JSON_VERSION}",
            code="malformed",
        )
    reading = Reading(
        device=_hex_field(obj, "device", PUBLIC_KEY_SIZE),
        sequence=_int_field(obj, "seq"),
        timestamp_ms=_int_field(obj, "ts"),
        observation=_base64_field(obj, "obs"),
    )
    return SignedReading(reading, _hex_field(obj, "sig", SIGNATURE_SIZE))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"key {key!r} appears twice")
        result[key] = value
    return result


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _int_field(obj: dict[str, Any], key: str) -> int:
    value = obj[key]
    if type(value) is not int:
        raise BadReading(f'"{key}" must be a JSON integer', code="malformed")
    return value


def _str_field(obj: dict[str, Any], key: str) -> str:
    value = obj[key]
    if type(value) is not str:
        raise BadReading(f'"{key}" must be a JSON string', code="malformed")
    return value


def _hex_field(obj: dict[str, Any], key: str, size: int) -> bytes:
    text = _str_field(obj, key)
    if len(text) != 2 * size or not _LOWER_HEX.fullmatch(text):
        raise BadReading(f'"{key}" must be {2 * size} lower-case hex digits', code="malformed")
    return bytes.fromhex(text)


def _base64_field(obj: dict[str, Any], key: str) -> bytes:
    text = _str_field(obj, key)
    if len(text) > 4 * ((MAX_OBSERVATION_BYTES + 2) // 3):
        raise BadReading(
            f'"{key}" decodes to more than {MAX_OBSERVATION_BYTES} bytes', code="too_large"
        )
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise BadReading(f'"{key}" must be standard padded base64', code="malformed") from None
    if base64.b64encode(raw).decode("ascii") != text:
        # Non-zero padding bits: two spellings of one value would let a relay alter the text.
        raise BadReading(f'"{key}" is not canonical base64', code="malformed")
    return raw
