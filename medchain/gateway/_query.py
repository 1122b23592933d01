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

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from operator import attrgetter
from typing import Any, TypeVar

from cachetools import LRUCache

from medchain.app import MS_PER_DAY, PurposeOfUse, VitalsEntry
from medchain.client import ChainBackend, NotAReader, reads_signed_by
from medchain.crypto import AccountKeys, address_from_public_key, format_address, sha256
from medchain.gateway._readings import BadReading, SignedReading, verify_reading
from medchain.gateway._service import open_bundle
from medchain.gateway._vitals import VitalKind, VitalSign, validate_vital
from medchain.types import MedchainError

T = TypeVar("T")


def _now(call: Callable[[], T]) -> T:
    return call()


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

_SIGNATURE_CHUNK = 500
"""Readings whose signatures one task of the pool checks (a bundle of a day is ~3,000)."""
_signature_checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="medchain-signatures")
"""Two threads (the cores of a small machine): PyNaCl's cffi calls release the GIL."""

DEFAULT_CHECKED_READINGS = 200_000
"""Readings a CheckedBundles keeps by default: two charts of a month of 100,000 readings,
about 1.1 kB each (220 MB in all; the FHIR Observation is most of a reading)."""


class CheckedBundles:
    """The readings of the bundles read_vitals has opened and checked, per reader: at
    most `max_readings` readings, the least recently viewed bundles forgotten first.
    Shared by the threads of one process (a lock guards it): a bundle being checked by
    one thread (a warm-up) is waited for by another that needs it, not checked twice."""

    def __init__(self, max_readings: int = DEFAULT_CHECKED_READINGS) -> None:
        if max_readings < 1:
            raise ValueError(f"keep at least one reading, not {max_readings}")
        self.max_readings = max_readings
        self._lock = threading.Lock()
        self._bundles: LRUCache[_BundleKey, tuple[VitalReading, ...]] = LRUCache(
            max_readings, getsizeof=lambda readings: max(1, len(readings))
        )
        self._checking: dict[_BundleKey, threading.Event] = {}

    @property
    def readings(self) -> int:
        """How many readings are kept now."""
        with self._lock:
            return int(self._bundles.currsize)

    def __len__(self) -> int:
        with self._lock:
            return len(self._bundles)

    def __contains__(self, key: _BundleKey) -> bool:
        """Whether the bundle is kept (without making it the most recently viewed)."""
        with self._lock:
            return key in self._bundles

    def get(self, key: _BundleKey) -> tuple[VitalReading, ...] | None:
        with self._lock:
            return self._bundles.get(key)

    def keep(self, key: _BundleKey, readings: tuple[VitalReading, ...]) -> None:
        with self._lock, suppress(ValueError):  # larger than the whole memory: not kept
            self._bundles[key] = readings

    def check_once(
        self, key: _BundleKey, check: Callable[[], tuple[VitalReading, ...]]
    ) -> tuple[VitalReading, ...]:
        """The bundle's readings: kept ones, or those of `check()`, then kept. While
        another thread checks the same bundle, wait for it rather than check it again
        (if it failed, or its readings could not be kept, `check()` runs here)."""
        while True:
            with self._lock:
                readings = self._bundles.get(key)
                if readings is not None:
                    return readings
                running = self._checking.get(key)
                if running is None:
                    done = self._checking[key] = threading.Event()
            if running is None:
                break
            running.wait()
        try:
            readings = check()
            self.keep(key, readings)
            return readings
        finally:
            with self._lock:
                del self._checking[key]
            done.set()


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
        try:
            if checked is None:
                readings = _open_checked(keys, blob, entry, patient, device, from_ms, to_ms)
            else:  # all of the bundle, to keep
                readings = checked.check_once(
                    (keys.address, patient, entry),
                    lambda: _open_checked(keys, blob, entry, patient),  # noqa: B023  called now
                )
        except NotAReader:
            found.unreadable += 1
            continue
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
    device: bytes | None = None,
    from_ms: int | None = None,
    to_ms: int | None = None,
) -> tuple[VitalReading, ...]:
    """The bundle's readings of `device` (any, if None) from `from_ms` to `to_ms` (all of
    the bundle's, if None), opened with `keys` and checked; NotAReader if it was not
    sealed for them."""
    bundle = open_bundle(keys, blob, entry.root, patient, entry.time_from_ms // MS_PER_DAY)
    if len(bundle.readings) != entry.count:
        raise _corrupted(entry, f"it holds {len(bundle.readings)} readings, not {entry.count}")
    low = entry.time_from_ms if from_ms is None else from_ms
    high = entry.time_to_ms if to_ms is None else to_ms
    wanted = []
    for signed in bundle.readings:
        address = _place(signed, entry)
        if (device is None or address == device) and low <= signed.reading.timestamp_ms <= high:
            wanted.append((signed, address))
    return _checked(wanted, entry, format_address(patient))


def _checked(
    wanted: Sequence[tuple[SignedReading, bytes]], entry: VitalsEntry, patient: str
) -> tuple[VitalReading, ...]:
    """The readings kept, each after its signature, then its profile, is checked; the
    first reading (in the bundle's order) that fails either is the error. Signatures
    (and the reading ids, from the same signed bytes) are done a chunk at a time on a
    small pool, as libsodium runs without the GIL, while this thread checks profiles."""
    chunks = [wanted[i : i + _SIGNATURE_CHUNK] for i in range(0, len(wanted), _SIGNATURE_CHUNK)]
    signatures = [_signature_checks.submit(_signatures, chunk) for chunk in chunks]
    kept: list[VitalReading] = []
    try:
        for chunk, signed in zip(chunks, signatures, strict=True):
            vitals, refused = _profiles(chunk, patient)
            ids, forged = signed.result()
            if forged is not None and (refused is None or forged[0] <= refused[0]):
                refused = forged
            if refused is not None:
                raise _refused(entry, ids[refused[0]], refused[1])
            kept.extend(
                _reading(s, address, vital, reading_id, entry)
                for (s, address), vital, reading_id in zip(chunk, vitals, ids, strict=True)
            )
    finally:
        for future in signatures:
            future.cancel()
    return tuple(kept)


_Refusal = tuple[int, BadReading]
"""The index of the first reading refused in a chunk, and why."""


def _profiles(
    chunk: Sequence[tuple[SignedReading, bytes]], patient: str
) -> tuple[list[VitalSign], _Refusal | None]:
    """What each reading says, up to the first that breaks the profile or is of another
    patient than `patient` (then that reading, and why)."""
    vitals: list[VitalSign] = []
    for i, (signed, _) in enumerate(chunk):
        reading = signed.reading
        try:
            vital = validate_vital(reading.observation, reading.device)
        except BadReading as exc:
            return vitals, (i, exc)
        if vital.patient != patient:
            return vitals, (i, _OtherPatient("of another patient"))
        vitals.append(vital)
    return vitals, None


def _signatures(
    chunk: Sequence[tuple[SignedReading, bytes]],
) -> tuple[list[bytes], _Refusal | None]:
    """The readings' ids, and the first whose device signature fails (and why)."""
    ids = [signed.reading_id for signed, _ in chunk]
    for i, (signed, _) in enumerate(chunk):
        try:
            verify_reading(signed)
        except BadReading as exc:
            return ids, (i, exc)
    return ids, None


class _OtherPatient(BadReading):
    """A conforming reading of another patient than the bundle's."""


def _refused(entry: VitalsEntry, reading_id: bytes, why: BadReading) -> VitalsCorrupted:
    what = " is" if isinstance(why, _OtherPatient) else ":"
    return _corrupted(entry, f"reading {reading_id.hex()}{what} {why.message}")


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


def _reading(
    signed: SignedReading, address: bytes, vital: VitalSign, reading_id: bytes, entry: VitalsEntry
) -> VitalReading:
    reading = signed.reading
    return VitalReading(
        reading_id=reading_id,
        device=address,
        time_ms=reading.timestamp_ms,
        sequence=reading.sequence,
        kind=vital.kind,
        system=vital.system,
        code=vital.code,
        values=vital.values,
        unit=vital.unit,
        observation=reading.observation,
        batch_id=entry.batch_id,
        height=entry.height,
    )


def _corrupted(entry: VitalsEntry, what: str) -> VitalsCorrupted:
    return VitalsCorrupted(
        f"bundle {entry.cid} of batch {entry.batch_id.hex()} does not match the chain: {what}; "
        "the gateway that committed it is faulty or compromised"
    )


OnChain = Callable[[Callable[[], T]], T]
"""Runs one chain call where the chain may be used (a web app's chain thread)."""


def warm_vitals(
    keys: AccountKeys,
    chain: ChainBackend,
    patient: bytes,
    from_ms: int,
    to_ms: int,
    checked: CheckedBundles,
    on_chain: OnChain[Any] = _now,
) -> int:
    """Check, ahead of any view, the bundles of `patient` from `from_ms` to `to_ms` that
    `checked` does not keep yet, newest first, and keep them; how many were checked. The
    chain is asked once for the bundles and once per blob, each through `on_chain`,
    so a page's calls interleave; a bundle is opened and checked on this thread, and a
    view that needs it meanwhile waits for it (`CheckedBundles.check_once`). What fails
    here is left for the view to report (an altered blob, a bundle not sealed for
    `keys`, a node that refuses): a warm-up only saves work, it never decides."""
    signed = reads_signed_by(chain, keys)
    try:
        entries = on_chain(lambda: signed.vitals(patient, from_ms, to_ms))
    except MedchainError:
        return 0
    done = 0
    for entry in sorted(entries, key=attrgetter("time_to_ms"), reverse=True):
        key = (keys.address, patient, entry)
        if key in checked:
            continue
        try:
            blob = on_chain(lambda: chain.blobs.get(entry.cid))  # noqa: B023  called now
            if sha256(blob) != entry.ciphertext_hash:
                continue
            checked.check_once(key, lambda: _open_checked(keys, blob, entry, patient))  # noqa: B023
        except MedchainError:
            continue
        done += 1
    return done
