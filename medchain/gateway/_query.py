"""Reading vitals back: a patient, or a reader they authorised, lists a patient's device
readings over a time range and decrypts them, on any ChainBackend.

The chain indexes every bundle (one patient's readings of one UTC day in one batch)
under its patient and day (`vitals`). For each bundle overlapping the range, the blob is
fetched by its CID, checked against the hash on chain and opened with the reader's keys;
then every reading kept is checked as the gateway checked it: signed by its device, a
device the chain lists for that bundle (so one of the patient's), inside the bundle's
time range, a vital sign of this patient. A gateway or node that slipped in a reading of
its own is caught here (VitalsCorrupted), not shown.

Bundles are sealed for the readers the chain listed when they were committed: a reader
the patient shares their vitals with later opens only what was committed since. Those
older bundles are counted (`VitalReadings.unreadable`), not an error, unless the reader
can open none of the bundles in the range.

A reader that views the same vitals again (the web app's chart) passes `checked`, a
bounded memory of the bundles whose readings it has checked: a bundle is immutable and
named on chain by its content's hash, so once its readings passed they need not be
checked again. Each view still asks the chain for the bundles (a node decides again
who may read them), fetches every blob and compares it with its hash on chain (a blob
altered in the store is caught), and opens only bundles this reader opened before.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from contextlib import suppress
from dataclasses import dataclass
from operator import attrgetter

from cachetools import LRUCache

from medchain.app import MS_PER_DAY, PurposeOfUse, VitalsEntry
from medchain.client import ChainBackend, NotAReader, reads_signed_by
from medchain.crypto import AccountKeys, address_from_public_key, format_address, sha256
from medchain.gateway._readings import BadReading, SignedReading, verify_reading
from medchain.gateway._service import open_bundle
from medchain.gateway._vitals import (
    BLOOD_PRESSURE_PANEL,
    BODY_TEMPERATURE,
    FALL_CODE,
    HEART_RATE,
    LOINC,
    OXYGEN_SATURATION,
    OXYGEN_SATURATION_ARTERIAL,
    SNOMED,
    VitalKind,
    validate_vital,
)
from medchain.types import MedchainError

_CODES = frozenset(
    {
        (LOINC, HEART_RATE.code),
        (LOINC, OXYGEN_SATURATION.code),
        (LOINC, OXYGEN_SATURATION_ARTERIAL.code),
        (LOINC, BODY_TEMPERATURE.code),
        (LOINC, BLOOD_PRESSURE_PANEL),
        (SNOMED, FALL_CODE),
    }
)


class VitalsCorrupted(MedchainError):
    """A bundle that does not match the chain, or holds a reading its gateway should
    never have committed."""

    code = "vitals_corrupted"


@dataclass(frozen=True, slots=True)
class VitalReading:
    """One decrypted reading and what it measured."""

    reading_id: bytes
    device: bytes
    """The device's address."""
    time_ms: int
    """The time the device signed, ms since the Unix epoch."""
    sequence: int
    kind: VitalKind
    system: str
    """The code system: LOINC, or SNOMED CT for a fall."""
    code: str
    values: tuple[float, ...]
    """One value; (systolic, diastolic) for blood pressure; (1.0,) a fall, (0.0,) none."""
    unit: str
    """UCUM; '' for a fall."""
    observation: bytes
    """The FHIR R4 Observation as the device signed it (canonical JSON)."""
    batch_id: bytes
    height: int
    """Height of the batch that committed it."""

    @property
    def measurement(self) -> str:
        return self.kind.value.replace("-", " ")

    @property
    def value_text(self) -> str:
        if self.kind is VitalKind.FALL:
            return "fall detected" if self.values[0] else "no fall"
        return "/".join(f"{v:g}" for v in self.values)


class VitalReadings(list[VitalReading]):
    """Readings, oldest first. `unreadable` counts the bundles in the range that were
    not sealed for this reader (committed before the patient shared their vitals)."""

    def __init__(self, readings: Iterable[VitalReading] = (), unreadable: int = 0) -> None:
        super().__init__(readings)
        self.unreadable = unreadable


_ORDER = attrgetter("time_ms", "device", "sequence")
"""How readings are listed: by time (a key built in C: a chart sorts 100,000)."""

_BundleKey = tuple[bytes, bytes, VitalsEntry]
"""(reader, patient, the bundle as the chain lists it, hash of its blob included)."""

DEFAULT_CHECKED_READINGS = 200_000
"""Readings a CheckedBundles keeps by default: two charts of a month of 100,000 readings,
about 1.1 kB each (220 MB in all; the FHIR Observation is most of a reading)."""


class CheckedBundles:
    """The readings of the bundles read_vitals has opened and checked, per reader: at
    most `max_readings` readings, the least recently viewed bundles forgotten first.
    Shared by the threads of one process (a lock guards it)."""

    def __init__(self, max_readings: int = DEFAULT_CHECKED_READINGS) -> None:
        if max_readings < 1:
            raise ValueError(f"keep at least one reading, not {max_readings}")
        self.max_readings = max_readings
        self._lock = threading.Lock()
        self._bundles: LRUCache[_BundleKey, tuple[VitalReading, ...]] = LRUCache(
            max_readings, getsizeof=lambda readings: max(1, len(readings))
        )

    @property
    def readings(self) -> int:
        """How many readings are kept now."""
        with self._lock:
            return int(self._bundles.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._bundles)

    def get(self, key: _BundleKey) -> tuple[VitalReading, ...] | None:
        with self._lock:
            return self._bundles.get(key)

    def keep(self, key: _BundleKey, readings: tuple[VitalReading, ...]) -> None:
        with self._lock, suppress(ValueError):  # larger than the whole memory: not kept
            self._bundles[key] = readings


def read_vitals(
    keys: AccountKeys,
    chain: ChainBackend,
    patient: bytes,
    from_ms: int,
    to_ms: int,
    device: bytes | None = None,
    purpose: PurposeOfUse | None = None,
    checked: CheckedBundles | None = None,
) -> VitalReadings:
    """The readings of `patient` (of `device` only, if given) timed from `from_ms` to
    `to_ms` (both included), decrypted with `keys`, sorted by time. NotAReader when the
    range holds bundles but none was sealed for `keys`, or a node refuses `keys` the
    patient's vitals (reads signed for `purpose`); VitalsCorrupted when a bundle
    does not match the chain; the chain's InvalidArgument for a range it does not
    answer (e.g. over MAX_VITALS_QUERY_DAYS days). With `checked`, bundles checked
    before are taken from it, and those checked now are kept in it whole."""
    chain = reads_signed_by(chain, keys, purpose)  # a node serves vitals to signed reads
    entries = chain.vitals(patient, from_ms, to_ms, device)  # a node may refuse: NotAReader
    found = VitalReadings()
    for entry in entries:
        blob = chain.blobs.get(entry.cid)
        if sha256(blob) != entry.ciphertext_hash:
            raise VitalsCorrupted(
                f"bundle {entry.cid} of batch {entry.batch_id.hex()} does not match its hash "
                "on chain; fetch it from another node"
            )
        key = (keys.address, patient, entry)
        readings = checked.get(key) if checked is not None else None
        if readings is None:
            whole = (None, entry.time_from_ms, entry.time_to_ms)  # all of it, to keep
            wanted = (device, from_ms, to_ms) if checked is None else whole
            try:
                readings = _open_checked(keys, blob, entry, patient, *wanted)
            except NotAReader:
                found.unreadable += 1
                continue
            if checked is not None:
                checked.keep(key, readings)
        if device is None and from_ms <= entry.time_from_ms and entry.time_to_ms <= to_ms:
            found.extend(readings)  # the whole bundle is in the range
        else:
            found.extend(
                r
                for r in readings
                if from_ms <= r.time_ms <= to_ms and (device is None or r.device == device)
            )
    if entries and found.unreadable == len(entries):
        raise NotAReader(
            f"{format_address(keys.address)} is not a reader of these vitals; the patient "
            "shares them with `medchain devices share-vitals` (readings are sealed for the "
            "readers of the moment they are committed: those committed before stay closed)"
        )
    found.sort(key=_ORDER)
    return found


def _open_checked(
    keys: AccountKeys,
    blob: bytes,
    entry: VitalsEntry,
    patient: bytes,
    device: bytes | None,
    from_ms: int,
    to_ms: int,
) -> tuple[VitalReading, ...]:
    """The bundle's readings of `device` (any, if None) from `from_ms` to `to_ms`,
    opened with `keys` and checked; NotAReader if it was not sealed for them."""
    bundle = open_bundle(keys, blob, entry.root, patient, entry.time_from_ms // MS_PER_DAY)
    if len(bundle.readings) != entry.count:
        raise _corrupted(entry, f"it holds {len(bundle.readings)} readings, not {entry.count}")
    kept = []
    for signed in bundle.readings:
        address = _place(signed, entry)
        if device is not None and address != device:
            continue
        if not from_ms <= signed.reading.timestamp_ms <= to_ms:
            continue
        kept.append(_check(signed, entry, patient))
    return tuple(kept)


def _place(signed: SignedReading, entry: VitalsEntry) -> bytes:
    """The reading's device address, after checking that the chain lists the device and
    the reading's time for the bundle (cheap: every reading of the bundle)."""
    reading = signed.reading
    address = address_from_public_key(reading.device)
    if address not in entry.devices:
        raise _corrupted(entry, f"it holds a reading of {format_address(address)}, not listed")
    if not entry.time_from_ms <= reading.timestamp_ms <= entry.time_to_ms:
        raise _corrupted(entry, f"it holds a reading timed {reading.timestamp_ms}, out of range")
    return address


def _check(signed: SignedReading, entry: VitalsEntry, patient: bytes) -> VitalReading:
    """The reading kept, after checking its signature and profile; VitalsCorrupted if
    the gateway should never have committed it."""
    reading = signed.reading
    try:
        verify_reading(signed)
        vital = validate_vital(reading.observation, reading.device)
    except BadReading as exc:
        raise _corrupted(entry, f"reading {signed.reading_id.hex()}: {exc.message}") from None
    if vital.patient != format_address(patient):
        raise _corrupted(entry, f"reading {signed.reading_id.hex()} is of another patient")
    system, code = _code(reading.observation)
    return VitalReading(
        reading_id=signed.reading_id,
        device=address_from_public_key(reading.device),
        time_ms=reading.timestamp_ms,
        sequence=reading.sequence,
        kind=vital.kind,
        system=system,
        code=code,
        values=vital.values,
        unit=vital.unit,
        observation=reading.observation,
        batch_id=entry.batch_id,
        height=entry.height,
    )


def _code(observation: bytes) -> tuple[str, str]:
    """The observation's supported (system, code); validate_vital found exactly one."""
    obj = json.loads(observation)
    for coding in obj["code"]["coding"]:
        pair = (coding["system"], coding["code"])
        if pair in _CODES:
            return pair
    raise AssertionError("validate_vital accepted an observation without a supported code")


def _corrupted(entry: VitalsEntry, what: str) -> VitalsCorrupted:
    return VitalsCorrupted(
        f"bundle {entry.cid} of batch {entry.batch_id.hex()} does not match the chain: {what}; "
        "the gateway that committed it is faulty or compromised"
    )
