"""The gateway pipeline: every reading a device sends goes through `GatewayService.submit`,
every batch to the chain through `flush`. Transport-free, so the HTTP server (and later
MQTT) is a thin shell and the whole pipeline is tested in process on a LocalChain.

Per reading: parse strictly -> the device on chain (cached briefly) -> its state in
force (restricted/banned refused) -> signature -> replay guard -> rate limit -> vital-
signs profile (and the subject must be the device's own patient) -> accepted, persisted,
acknowledged. Refusals by a *signed* reading are strikes (`devices.report`), at most one
per device and offence per batch window so a flooding device cannot flood the chain.
Bad signatures are struck only if configured (see GatewayConfig.strike_bad_signatures),
and an exact resend of an accepted reading is acknowledged again, not struck: a device
resends when an acknowledgement is lost, and an eavesdropper could resend it too.

Who reads a batch: each bundle (one patient's readings of one UTC day) is sealed
(medchain.client._envelope) for the patient, the patient's guardians
(`devices.add_guardian`), the people the patient put in charge of their devices, and the
readers the patient shares their vitals with (`devices.share_vitals`), as the chain lists
them when the batch is committed: a reader added later reads the batches committed from
then on (medchain.gateway._query reads them back by time).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from medchain.app import (
    MAX_BATCH_BUNDLES,
    MS_PER_DAY,
    Bundle,
    Device,
    DeviceOffence,
    DeviceState,
    KeyWrap,
    new_batch_id,
)
from medchain.client import (
    ChainBackend,
    MedchainClient,
    NotAReader,
    UnknownParty,
    open_sealed,
    seal,
)
from medchain.crypto import (
    AccountKeys,
    address_from_public_key,
    format_address,
    parse_address,
    sha256,
)
from medchain.gateway._batch import Batch, BatchEntry, PatientBundle, reading_day
from medchain.gateway._config import GatewayConfig
from medchain.gateway._index import CommittedReading, CommittedRow, ReadingIndex
from medchain.gateway._intake import CheckedReading, check_reading
from medchain.gateway._readings import (
    BadReading,
    Reading,
    SequenceGuard,
    SignedReading,
    encode_signed_reading,
    reading_from_json,
)
from medchain.gateway._vitals import NonConformingReading
from medchain.offchain import BlobStore
from medchain.types import MedchainError, decode, encode

log = logging.getLogger("medchain.gateway")

BUNDLE_CONTEXT = b"medchain/reading-bundle/v3\x00"
"""v3: the bundle is compressed (zlib) before it is sealed. The devices of one patient
share a bundle, so its size says a little about what they sent together; its readers
and the chain already know how many readings it holds."""
MAX_BUNDLE_BYTES = 128 * 1024 * 1024
"""Largest bundle a reader inflates (a bomb is refused, not unpacked)."""
# Upper bounds of a commit_batch transaction's size, to keep a batch under the chain's
# max_tx_bytes: an encoded Bundle is 156 bytes with one device (a 59-character CID, the
# largest counts and times), each further device 21; the signed envelope and the
# arguments around the bundles stay well under a kilobyte.
_BUNDLE_BYTES = 160
_DEVICE_BYTES = 21
_TX_OVERHEAD_BYTES = 1_024

_STATUS = {
    "malformed": 400,
    "too_large": 400,
    "bad_signature": 401,
    "device_restricted": 403,
    "device_banned": 403,
    "unknown_device": 404,
    "replayed": 409,
    "non_conforming": 422,
    "bad_time": 422,
    "rate_limited": 429,
}


class ReadingRefused(MedchainError):
    """A reading the gateway will not accept; `status` is the HTTP status to answer."""

    code = "reading_refused"

    def __init__(self, message: str, code: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.status = _STATUS.get(code, 400)
        self.retry_after_s = retry_after_s

    def answer(self) -> dict[str, Any]:
        """What a device is told, in JSON (over HTTP and MQTT alike)."""
        answer: dict[str, Any] = {
            "accepted": False,
            "status": self.status,
            "error": self.code,
            "message": self.message,
        }
        if self.retry_after_s is not None:
            answer["retry_after_s"] = round(self.retry_after_s, 3)
        return answer


@dataclass(frozen=True)
class Accepted:
    reading_id: bytes
    duplicate: bool = False
    """True when the reading had already been accepted (a resend)."""

    def answer(self) -> dict[str, Any]:
        """What a device is told, in JSON (over HTTP and MQTT alike)."""
        return {"accepted": True, "id": self.reading_id.hex(), "duplicate": self.duplicate}


@dataclass(frozen=True)
class ReadingStatus:
    reading_id: bytes
    state: str
    """"pending", "committed" or "unknown"."""
    committed: CommittedReading | None = None


@dataclass(frozen=True)
class SealedBundle:
    """What the blob store holds for one patient's bundle: the ciphertext and the content
    key wrapped for each reader (the chain's Bundle carries only CID and hash)."""

    wraps: tuple[KeyWrap, ...]
    ciphertext: bytes


def bundle_context(root: bytes, patient: bytes, day: int) -> bytes:
    """What a bundle's encryption is bound to: its batch, patient and UTC day."""
    return BUNDLE_CONTEXT + root + patient + day.to_bytes(8, "big")


def seal_bundle(bundle: PatientBundle, root: bytes, readers: dict[bytes, bytes]) -> bytes:
    """The blob a gateway stores for a patient's bundle of batch `root`: compressed
    (FHIR JSON shrinks about 8 times), then sealed for `readers` (address -> key)."""
    patient = _address_bytes(bundle.patient)
    packed = zlib.compress(bundle.encoded, 1)
    sealed = seal(packed, bundle_context(root, patient, bundle.day), readers)
    return encode(SealedBundle(sealed.wraps, sealed.ciphertext))


def open_bundle(
    keys: AccountKeys, blob: bytes, root: bytes, patient: bytes, day: int
) -> PatientBundle:
    """A reader opens a patient's bundle of UTC `day` in batch `root` (fetched by the CID
    on chain); NotAReader if it was not sealed for them."""
    sealed = decode(SealedBundle, blob)
    wrap = next((w for w in sealed.wraps if w.reader == keys.address), None)
    if wrap is None:
        raise NotAReader(f"{format_address(keys.address)} is not a reader of this bundle")
    context = bundle_context(root, patient, day)
    compressed = open_sealed(keys, wrap.wrapped_key, sealed.ciphertext, context)
    inflater = zlib.decompressobj()
    plain = inflater.decompress(compressed, MAX_BUNDLE_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        raise MedchainError(
            f"the bundle inflates beyond {MAX_BUNDLE_BYTES} bytes or is cut short; it is not "
            "one a gateway made"
        )
    bundle = decode(PatientBundle, plain)
    if (bundle.patient, bundle.day) != (format_address(patient), day):
        raise MedchainError("the bundle names another patient or day than its place on chain")
    return bundle


@lru_cache(maxsize=65_536)
def _address_bytes(text: str) -> bytes:
    """parse_address, memoised (see _address_text)."""
    return parse_address(text)


@lru_cache(maxsize=65_536)
def _address_text(address: bytes) -> str:
    """format_address, memoised: the same few thousand devices and patients are named
    on every reading, and bech32 costs more than the rest of the profile check."""
    return format_address(address)


@dataclass(frozen=True)
class _Prepared:
    """A batch sealed and stored off-chain, waiting for its commit_batch transaction."""

    batch: Batch
    bundles: list[Bundle]
    sealing_s: float
    storing_s: float


@lru_cache(maxsize=1)
def _preparers() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="medchain-batch")


class _Refresher:
    """Re-reads something from the chain on a thread of its own, one run at a time:
    asked again while a run is under way, it does nothing (that run will do)."""

    def __init__(self, name: str, work: Callable[[], None], what: str) -> None:
        self._name, self._work, self._what = name, work, what
        self._lock = threading.Lock()
        self.running = False

    def start(self) -> None:
        with self._lock:
            if self.running:
                return
            self.running = True
        threading.Thread(target=self._run, name=self._name, daemon=True).start()

    def _run(self) -> None:
        try:
            self._work()
        except MedchainError as exc:
            log.warning("%s not refreshed: %s", self._what, exc.message)
        finally:
            self.running = False


class _Bucket:
    def __init__(self, capacity: int, now: float) -> None:
        self.tokens = float(capacity)
        self.at = now


class GatewayService:
    """One gateway account, one chain. Thread-safe: the server calls `submit` from
    request handlers while a background task calls `flush`."""

    def __init__(
        self,
        keys: AccountKeys,
        chain: ChainBackend,
        index: ReadingIndex,
        config: GatewayConfig | None = None,
        *,
        blobs: BlobStore | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        concurrent: bool = False,
    ) -> None:
        """`clock` times batching and rate limits; `wall_clock` (seconds since the Unix
        epoch) is what readings' own times are checked against.

        `concurrent`: the chain backend may be used from several threads at once
        (HttpChain; not an in-process LocalChain): device records and patients' readers
        are then re-read in the background (`_refresh_devices`, `_readers`) and the next
        batch is sealed and stored while the previous one commits (`flush`)."""
        self.concurrent = concurrent
        self._batching: set[bytes] = set()
        """Ids of the readings in the batch being prepared or committed."""
        self._device_refresh = _Refresher(
            "medchain-device-refresh",
            lambda: self._lookup(set(), self._clock()),
            "device records",
        )
        self._readers_refresh = _Refresher(
            "medchain-readers-refresh", self._refresh_expired_readers, "readers"
        )
        self.client = MedchainClient(keys, chain)
        self.chain = chain
        self.index = index
        self.config = config or GatewayConfig()
        self.blobs = blobs if blobs is not None else chain.bulk_blobs(keys)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._guard = SequenceGuard(index.sequences())
        self._pending: dict[bytes, BatchEntry] = {
            p.reading.reading_id: BatchEntry(format_address(p.patient), p.reading)
            for p in index.pending()
        }
        started = clock()
        self._accepted_at: dict[bytes, float] = dict.fromkeys(self._pending, started)
        """When each pending reading was accepted (by `clock`), in acceptance order."""
        self._oldest: float | None = started if self._pending else None
        """When the oldest pending reading outside a batch in progress was accepted."""
        self._strikes: dict[tuple[bytes, DeviceOffence], bytes] = {}
        self._devices: dict[bytes, tuple[float, Device | None, int]] = {}
        self._buckets: dict[bytes, _Bucket] = {}
        self._reader_cache: dict[bytes, tuple[float, dict[bytes, bytes]]] = {}
        self._inflight: tuple[bytes, bytes] | None = None
        """(root, batch id) of a batch whose commit did not answer: checked on retry."""

    @property
    def address(self) -> bytes:
        return self.client.address

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    # -- intake -------------------------------------------------------------------------

    def submit_json(self, data: bytes | str) -> Accepted:
        try:
            signed = reading_from_json(data)
        except BadReading as exc:
            raise ReadingRefused(exc.message, exc.code) from None
        return self.submit(signed)

    def submit(self, signed: SignedReading) -> Accepted:
        """Run one reading through the pipeline; ReadingRefused says why it was refused."""
        (result,) = self.submit_many([signed])
        if isinstance(result, ReadingRefused):
            raise result
        return result

    def submit_many(self, readings: Sequence[SignedReading]) -> list[Accepted | ReadingRefused]:
        """Run a group of readings through the pipeline, the stateless checks included
        (in this thread: a gateway process hands those to its intake workers and calls
        `submit_checked`); see `submit_checked`."""
        return self.submit_checked([check_reading(signed) for signed in readings])

    def submit_checked(self, readings: Sequence[CheckedReading]) -> list[Accepted | ReadingRefused]:
        """Decide on a group of checked readings, in order, and persist the accepted ones
        in one transaction (group commit) before answering: one answer per reading.
        A device's readings must come in sequence order within and across groups."""
        addresses = [address_from_public_key(c.signed.reading.device) for c in readings]
        self._refresh_devices(set(addresses))
        checked = [self._check_device(c, a) for c, a in zip(readings, addresses, strict=True)]
        results: list[Accepted | ReadingRefused] = []
        accepted: dict[bytes, tuple[SignedReading, Device]] = {}
        now_ms = int(self._wall_clock() * 1000)
        with self._lock:
            for reading, device in zip(readings, checked, strict=True):
                if isinstance(device, ReadingRefused):
                    results.append(device)
                    continue
                try:
                    results.append(self._admit(reading, device, accepted, now_ms))
                except ReadingRefused as exc:
                    results.append(exc)
            if accepted:
                try:
                    self.index.accept_many([(s, d.patient) for s, d in accepted.values()])
                except Exception:
                    self._guard = SequenceGuard(self.index.sequences())  # undo this group
                    raise
                now = self._clock()
                for rid, (signed, device) in accepted.items():
                    self._pending[rid] = BatchEntry(_address_text(device.patient), signed)
                    self._accepted_at[rid] = now
                if self._oldest is None:
                    self._oldest = now
        return results

    def _check_device(self, checked: CheckedReading, address: bytes) -> Device | ReadingRefused:
        """The device (at `address`) is registered and in force, and signed the reading
        (no lock needed). A bad signature is struck only if configured."""
        reading = checked.signed.reading
        device, height = self._device(address)
        if device is None or device.key != reading.device:
            return ReadingRefused(
                f"device {_address_text(address)} is not registered on chain "
                f"{self.chain.chain_id}; its patient, a guardian or a hospital registers it "
                "with `medchain devices register`",
                "unknown_device",
            )
        state = device.state_at(height)
        if state is DeviceState.BANNED:
            return ReadingRefused(
                f"device {_address_text(address)} is banned: readings refused; only a "
                "hospital can lift a ban",
                "device_banned",
            )
        if state is DeviceState.RESTRICTED:
            until = (
                f"until height {device.restricted_until}"
                if device.restricted_until
                else "until its owner or a hospital lifts it"
            )
            return ReadingRefused(
                f"device {_address_text(address)} is restricted {until}: readings refused",
                "device_restricted",
            )
        error = checked.signature_error
        if error is not None:
            if self.config.strike_bad_signatures:
                with self._lock:
                    self._strike(address, DeviceOffence.UNSIGNED, checked.signed)
            return ReadingRefused(error.message, error.code)
        return device

    def _admit(
        self,
        checked: CheckedReading,
        device: Device,
        group: dict[bytes, tuple[SignedReading, Device]],
        now_ms: int,
    ) -> Accepted:
        """Replay guard, rate limit, profile and time for a signed reading of a device in
        force; adds it to `group` if accepted. Called under the lock."""
        signed = checked.signed
        reading = signed.reading
        address = device.device
        rid = signed.reading_id
        if rid in group or rid in self._pending:
            return Accepted(rid, duplicate=True)
        try:
            self._guard.check(reading)
        except BadReading as exc:
            # only a reading at or below the device's last sequence number can be a resend
            # of one already committed: the index is asked then, not for every reading
            if self.index.is_committed(rid):
                return Accepted(rid, duplicate=True)
            self._strike(address, DeviceOffence.REPLAY, signed)
            raise ReadingRefused(exc.message, exc.code) from None
        wait = self._take_token(address)
        if wait is not None:
            self._strike(address, DeviceOffence.RATE_LIMIT, signed)
            raise ReadingRefused(
                f"device {_address_text(address)} sends more than "
                f"{self.config.rate_per_minute} readings a minute (burst "
                f"{self.config.rate_burst}); retry in {wait:.1f} s",
                "rate_limited",
                retry_after_s=wait,
            )
        patient = _address_text(device.patient)
        vital = checked.vital
        if isinstance(vital, NonConformingReading) or vital.patient != patient:
            self._strike(address, DeviceOffence.NONCONFORMING, signed)
            raise ReadingRefused(
                vital.message
                if isinstance(vital, NonConformingReading)
                else f"the observation's subject Patient/{vital.patient} is not the patient "
                f"this device is registered to ({patient})",
                "non_conforming",
            )
        self._check_time(reading, now_ms)
        self._guard.record(reading)
        group[rid] = (signed, device)
        return Accepted(rid)

    def _check_time(self, reading: Reading, now_ms: int) -> None:
        """Not from the future (beyond `max_clock_ahead_ms`), nor older than
        `max_reading_age_days` if set. Not a strike: a device whose clock is wrong is
        faulty, not hostile, and a flood of such readings is still rate-limited."""
        ahead_ms = reading.timestamp_ms - now_ms
        if ahead_ms > self.config.max_clock_ahead_ms:
            raise ReadingRefused(
                f"the reading is timed {ahead_ms / 1000:.0f} s ahead of the gateway's clock "
                f"(at most {self.config.max_clock_ahead_ms / 1000:.0f} s allowed); set the "
                "device's clock",
                "bad_time",
            )
        max_days = self.config.max_reading_age_days
        if max_days and now_ms - reading.timestamp_ms > max_days * MS_PER_DAY:
            raise ReadingRefused(
                f"the reading was taken {(now_ms - reading.timestamp_ms) // MS_PER_DAY} days "
                f"ago; this gateway takes readings at most {max_days} days old "
                "(max_reading_age_days)",
                "bad_time",
            )

    def _refresh_devices(self, addresses: set[bytes]) -> None:
        """Re-read, in one call, the devices whose cached record has expired: a group of
        readings from a thousand devices costs one lookup, not a thousand. With
        `concurrent`, known devices' records are re-read on another thread while
        the group goes on with them (at most two cache periods late), so a busy node's
        answer time never holds up intake; a device never seen is always waited for."""
        now = self._clock()
        ttl = self.config.device_cache_ms / 1000
        missing = {a for a in addresses if a not in self._devices}
        stale = {a for a in addresses - missing if self._devices[a][0] <= now}
        if not missing and not stale:
            return
        late = any(self._devices[a][0] + 2 * ttl <= now for a in stale)
        if self.concurrent and not missing and not late:
            self._device_refresh.start()
            return
        self._lookup(missing | stale, now)

    def _lookup(self, addresses: set[bytes], now: float) -> None:
        # Those about to expire are re-read with them: the fleet's records then expire
        # together, one lookup per half cache period instead of one per small group.
        soon = now + self.config.device_cache_ms / 2000
        addresses = addresses | {a for a, c in list(self._devices.items()) if c[0] <= soon}
        ordered = sorted(addresses)
        height, found = self.chain.devices(ordered)
        expires = now + self.config.device_cache_ms / 1000
        for address, device in zip(ordered, found, strict=True):
            self._devices[address] = (expires, device, height)

    def _device(self, address: bytes) -> tuple[Device | None, int]:
        """The device's record and the height it was read at, as the last lookup left
        it: `_refresh_devices` has run for the group, so it is current (or being
        refreshed in the background) and is not read a second time."""
        cached = self._devices.get(address)
        if cached is None:
            self._lookup({address}, self._clock())
            cached = self._devices[address]
        return cached[1], cached[2]

    def _take_token(self, device: bytes) -> float | None:
        """None if the device may send now, else the seconds until it may."""
        now = self._clock()
        rate = self.config.rate_per_minute / 60
        bucket = self._buckets.setdefault(device, _Bucket(self.config.rate_burst, now))
        bucket.tokens = min(self.config.rate_burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / rate

    def _strike(self, device: bytes, offence: DeviceOffence, signed: SignedReading) -> None:
        self._strikes.setdefault((device, offence), encode_signed_reading(signed))

    # -- status -------------------------------------------------------------------------

    def status(self, reading_id: bytes) -> ReadingStatus:
        committed = self.index.committed(reading_id)
        if committed is not None:
            return ReadingStatus(reading_id, "committed", committed)
        if reading_id in self._pending:
            return ReadingStatus(reading_id, "pending")
        return ReadingStatus(reading_id, "unknown")

    # -- batching -----------------------------------------------------------------------

    def due(self) -> bool:
        """Whether a batch should be committed now (full, or its oldest reading waited
        the configured delay), or strikes are waiting to be reported."""
        if len(self._pending) >= self.config.batch_max_readings or self._strikes:
            return True
        oldest = self._oldest
        return oldest is not None and (self._clock() - oldest) * 1000 >= (
            self.config.batch_max_delay_ms
        )

    def flush(self) -> list[bytes]:
        """Report the window's strikes, then commit pending readings in batches; returns
        the committed batch ids. A batch that fails stays pending and is retried by the
        next flush, so no accepted reading is lost. With `concurrent`, the next batch is
        sealed and stored while the previous one waits for its block. Strikes are also
        reported after each batch: under steady load one flush goes on for as long as
        readings keep coming, and a misbehaving device must not wait for it to end."""
        with self._flush_lock:
            self._report_strikes()
            batch_ids: list[bytes] = []
            prepared = self._prepare()
            while prepared is not None:
                following = _preparers().submit(self._prepare) if self.concurrent else None
                try:
                    batch_ids.append(self._finish(prepared))
                    self._report_strikes()
                except BaseException:
                    if following is not None:  # let it end, and put its readings back
                        with contextlib.suppress(Exception):
                            later = following.result()
                            if later is not None:
                                self._release(later.batch.entries)
                    raise
                prepared = following.result() if following is not None else self._prepare()
            return batch_ids

    def _release(self, entries: Sequence[BatchEntry]) -> None:
        with self._lock:
            for entry in entries:
                self._batching.discard(entry.reading.reading_id)

    def _next_batch(self) -> list[BatchEntry]:
        """Pending readings for one batch: at most batch_max_readings, in at most the
        chain's MAX_BATCH_BUNDLES bundles (one per patient and UTC day), and few enough
        bundles that the transaction stays under the chain's size limit."""
        entries: list[BatchEntry] = []
        bundles: dict[tuple[str, int], set[bytes]] = {}
        budget = self.chain.params.max_tx_bytes - _TX_OVERHEAD_BYTES
        size = 0
        for rid, entry in self._pending.items():
            if len(entries) >= self.config.batch_max_readings:
                break
            if rid in self._batching:
                continue  # in the batch being committed
            key = (entry.patient, reading_day(entry.reading))
            devices = bundles.get(key)
            device = entry.reading.reading.device
            if devices is None:
                if len(bundles) >= MAX_BATCH_BUNDLES or size + _BUNDLE_BYTES > budget:
                    continue
                devices = bundles[key] = set()
                size += _BUNDLE_BYTES
            if device not in devices:
                if size + _DEVICE_BYTES > budget:
                    continue
                devices.add(device)
                size += _DEVICE_BYTES
            entries.append(entry)
        return entries

    def _report_strikes(self) -> None:
        with self._lock:
            strikes, self._strikes = self._strikes, {}
        reports = [(d, o, e) for (d, o), e in sorted(strikes.items())]
        try:
            results = self.client.report_devices(reports)
        except MedchainError as exc:  # the node is unreachable: these strikes are lost
            log.warning("%d strikes not recorded: %s", len(reports), exc.message)
            return
        for (device, offence, _), result in zip(reports, results, strict=True):
            if isinstance(result, MedchainError):
                log.warning(
                    "strike %s against %s not recorded: %s",
                    offence.value,
                    _address_text(device),
                    result.message,
                )
            self._devices.pop(device, None)

    def _prepare(self) -> _Prepared | None:
        """The next batch, sealed and its bundles stored off-chain; None if nothing is
        pending outside the batch being committed."""
        with self._lock:
            entries = self._next_batch()
            self._batching.update(e.reading.reading_id for e in entries)
        if not entries:
            return None
        try:
            started = time.perf_counter()
            batch = Batch(entries)
            patients = [_address_bytes(bundle.patient) for bundle in batch.bundles]
            readers = self._readers(patients)
            blobs = [
                seal_bundle(bundle, batch.root, readers[patient])
                for bundle, patient in zip(batch.bundles, patients, strict=True)
            ]
            sealed_at = time.perf_counter()
            cids = self.blobs.put_many(blobs)  # one request for the whole batch
        except BaseException:
            self._release(entries)
            raise
        bundles = [
            Bundle(
                _address_bytes(bundle.patient),
                cid,
                sha256(blob),
                len(bundle.readings),
                bundle.time_from_ms,
                bundle.time_to_ms,
                bundle.devices,
            )
            for bundle, blob, cid in zip(batch.bundles, blobs, cids, strict=True)
        ]
        return _Prepared(batch, bundles, sealed_at - started, time.perf_counter() - sealed_at)

    def _finish(self, prepared: _Prepared) -> bytes:
        """Commit a prepared batch on chain, then index it and its readings."""
        batch, bundles = prepared.batch, prepared.bundles
        try:
            started = time.perf_counter()
            batch_id = self._submit_batch(batch, bundles)
        except BaseException:
            self._release(batch.entries)
            raise
        committed_at = time.perf_counter()
        # the index keeps the batch's leaves once and computes a proof when asked
        cid = {(p.patient, p.day): b.cid for p, b in zip(batch.bundles, bundles, strict=True)}
        rows: list[CommittedRow] = [
            (
                s.reading_id,
                batch_id,
                leaf,
                address_from_public_key(s.reading.device),
                _address_bytes(e.patient),
                s.reading.timestamp_ms,
                cid[e.patient, reading_day(s)],
            )
            for leaf, e in enumerate(batch.entries)  # leaf order: batch.reading_ids
            for s in (e.reading,)
        ]
        self.index.commit_batch(batch_id, batch.root, batch.reading_ids, rows)
        with self._lock:
            for entry in batch.entries:
                self._pending.pop(entry.reading.reading_id, None)
                self._accepted_at.pop(entry.reading.reading_id, None)
                self._batching.discard(entry.reading.reading_id)
            # what waited while this batch was made is due by its own age, not anew
            self._oldest = next(
                (at for rid, at in self._accepted_at.items() if rid not in self._batching), None
            )
        log.info(
            "committed batch %s: %d readings, %d bundles (sealing %.2f s, storing %.2f s, "
            "on chain %.2f s, indexing %.2f s)",
            batch_id.hex(),
            len(batch),
            len(bundles),
            prepared.sealing_s,
            prepared.storing_s,
            committed_at - started,
            time.perf_counter() - committed_at,
        )
        return batch_id

    def _readers(self, patients: Sequence[bytes]) -> dict[bytes, dict[bytes, bytes]]:
        """Each patient's readers (the patient, guardians, vitals readers) and their
        encryption keys, as the chain lists them, cached for `readers_cache_ms`; those
        to read are read in one lookup. With `concurrent`, an expired list less than a
        period late still seals this batch while every expired list is re-read on
        another thread (re-reading a few hundred patients' lists held a batch up by
        more than a second every period). A patient never seen, or a list later than
        that, is waited for."""
        now = self._clock()
        period = self.config.readers_cache_ms / 1000
        found: dict[bytes, dict[bytes, bytes]] = {}
        to_read: list[bytes] = []
        expired = False
        for patient in dict.fromkeys(patients):
            cached = self._reader_cache.get(patient)
            if cached is not None and (
                cached[0] > now or (self.concurrent and cached[0] + period > now)
            ):
                found[patient] = cached[1]
                expired = expired or cached[0] <= now
            else:
                to_read.append(patient)
        if expired:
            self._readers_refresh.start()
        if to_read:
            found.update(self._read_many_readers(to_read, now))
        return found

    def _read_many_readers(
        self, patients: Sequence[bytes], now: float
    ) -> dict[bytes, dict[bytes, bytes]]:
        """Patients' readers and keys in one lookup (`vitals_recipients`), cached."""
        expires = now + self.config.readers_cache_ms / 1000
        found = {}
        for patient, readers in zip(patients, self.chain.vitals_recipients(patients), strict=True):
            if readers is None:
                raise UnknownParty(
                    f"{format_address(patient)} is not a patient on chain {self.chain.chain_id}"
                )
            for address, key in readers.items():
                if not key:
                    raise UnknownParty(
                        f"{format_address(address)}, a reader of {format_address(patient)}'s "
                        "vitals, has no encryption key and cannot be given access to them"
                    )
            self._reader_cache[patient] = (expires, readers)
            found[patient] = readers
        return found

    def _refresh_expired_readers(self) -> None:
        now = self._clock()
        expired = [p for p, (expires, _) in list(self._reader_cache.items()) if expires <= now]
        if expired:
            self._read_many_readers(expired, now)

    def _submit_batch(self, batch: Batch, bundles: list[Bundle]) -> bytes:
        if self._inflight is not None and self._inflight[0] == batch.root:
            on_chain = self.chain.batch(self._inflight[1])
            if on_chain is not None and on_chain.root == batch.root:
                return self._inflight[1]  # the earlier attempt did commit
        nonce = self.chain.account(self.address).nonce
        self._inflight = (batch.root, new_batch_id(self.address, nonce))
        batch_id = self.client.commit_batch(batch.root, len(batch), bundles)
        self._inflight = None
        return batch_id
