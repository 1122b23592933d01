"""Whether a checked reading is accepted: the gateway's decisions that need state, in the
order they are made for each reading.

The device on chain (records cached for `device_cache_ms`) -> its state in force
(restricted/banned refused) -> signature -> already pending or committed (a resend,
acknowledged again) -> replay guard -> rate limit -> vital-signs profile (and the subject
must be the device's own patient) -> time. Refusals by a *signed* reading are strikes,
at most one per device and offence until they are taken for reporting, so a flooding
device cannot flood the chain. Bad signatures are struck only if configured (see
GatewayConfig.strike_bad_signatures): the device keys are public, so anyone can forge.

`Admission` holds no lock and does no I/O but the chain lookups named as such: the
gateway service calls it under its own lock, its lookups outside it.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from dataclasses import dataclass
from typing import Any

from medchain.app import MS_PER_DAY, Device, DeviceOffence, DeviceState
from medchain.client import ChainBackend
from medchain.crypto import address_from_public_key
from medchain.gateway._bundles import address_text
from medchain.gateway._config import GatewayConfig
from medchain.gateway._index import ReadingIndex
from medchain.gateway._intake import CheckedReading
from medchain.gateway._readings import BadReading, Reading, SequenceGuard, SignedReading
from medchain.gateway._readings import encode_signed_reading as _evidence
from medchain.gateway._vitals import NonConformingReading
from medchain.types import MedchainError

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


Answer = Accepted | ReadingRefused
Strike = tuple[bytes, DeviceOffence, bytes]
"""(device, offence, the offending signed reading encoded): one `devices.report`."""


@dataclass(frozen=True)
class DeviceRecords:
    """Device records as one chain lookup found them (None: not registered)."""

    expires: float
    height: int
    found: dict[bytes, Device | None]


class _Bucket:
    def __init__(self, capacity: int, now: float) -> None:
        self.tokens = float(capacity)
        self.at = now


class Admission:
    """The gateway's state for deciding on readings: device records, the replay guard,
    the devices' token buckets and the strikes not yet reported."""

    def __init__(self, chain: ChainBackend, index: ReadingIndex, config: GatewayConfig) -> None:
        self.chain = chain
        self.index = index
        self.config = config
        self._guard = SequenceGuard(index.sequences())
        self._devices: dict[bytes, tuple[float, Device | None, int]] = {}
        self._buckets: dict[bytes, _Bucket] = {}
        self._strikes: dict[tuple[bytes, DeviceOffence], bytes] = {}

    # -- device records -----------------------------------------------------------------

    def to_read(self, addresses: set[bytes], now: float, refreshing: bool = False) -> set[bytes]:
        """The devices among `addresses` whose record must be read before deciding:
        never seen, or expired; while a refresh is under way (`refreshing`), a record at
        most two cache periods late serves until it lands, so a busy node's answer time
        does not hold up intake. Those about to expire are read with them: the fleet's
        records then expire together, one lookup per half cache period instead of one
        per small group of readings."""
        grace = 2 * self.config.device_cache_ms / 1000 if refreshing else 0.0
        stale = {a for a in addresses if (c := self._devices.get(a)) is None or c[0] + grace <= now}
        return stale | self.expiring(now) if stale else stale

    def expiring(self, now: float) -> set[bytes]:
        """The devices whose record expires within half a cache period (none when
        records are not cached)."""
        if not self.config.device_cache_ms:
            return set()
        soon = now + self.config.device_cache_ms / 2000
        return {a for a, c in list(self._devices.items()) if c[0] <= soon}

    def read_devices(self, addresses: set[bytes], now: float) -> DeviceRecords:
        """The chain lookup, in one call for every device (I/O: outside the lock)."""
        ordered = sorted(addresses)
        height, found = self.chain.devices(ordered)
        expires = now + self.config.device_cache_ms / 1000
        return DeviceRecords(expires, height, dict(zip(ordered, found, strict=True)))

    def remember(self, records: DeviceRecords) -> None:
        for address, device in records.found.items():
            self._devices[address] = (records.expires, device, records.height)

    def forget(self, devices: Sequence[bytes]) -> None:
        """Read these devices' records again before their next reading (a strike was
        reported: their state may have changed)."""
        for device in devices:
            self._devices.pop(device, None)

    # -- deciding -------------------------------------------------------------------------

    def admit(
        self,
        readings: Sequence[CheckedReading],
        addresses: Sequence[bytes],
        pending: Container[bytes],
        now: float,
        now_ms: int,
    ) -> tuple[list[Answer], dict[bytes, tuple[SignedReading, Device]]]:
        """Decide on a group of readings (of the devices at `addresses`, whose records are
        current), in order: one answer each, and the accepted ones by reading id.
        `pending`: the ids of readings accepted earlier and not yet committed. A refused
        reading burns no sequence number; `undo` forgets what a group recorded."""
        results: list[Answer] = []
        accepted: dict[bytes, tuple[SignedReading, Device]] = {}
        for reading, address in zip(readings, addresses, strict=True):
            device = self._check_device(reading, address, now)
            if isinstance(device, ReadingRefused):
                results.append(device)
                continue
            try:
                results.append(self._admit(reading, device, accepted, pending, now, now_ms))
            except ReadingRefused as exc:
                results.append(exc)
        return results, accepted

    def undo(self) -> None:
        """Forget the sequence numbers of a group that could not be stored."""
        self._guard = SequenceGuard(self.index.sequences())

    def _check_device(
        self, checked: CheckedReading, address: bytes, now: float
    ) -> Device | ReadingRefused:
        """The device is registered and in force, and signed the reading."""
        reading = checked.signed.reading
        cached = self._devices.get(address)
        if cached is None:  # forgotten since its lookup, as a strike was reported
            self.remember(self.read_devices({address}, now))
            cached = self._devices[address]
        _, device, height = cached
        if device is None or device.key != reading.device:
            return ReadingRefused(
                f"device {address_text(address)} is not registered on chain "
                f"{self.chain.chain_id}; its patient, a guardian or a hospital registers it "
                "with `medchain devices register`",
                "unknown_device",
            )
        state = device.state_at(height)
        if state is DeviceState.BANNED:
            return ReadingRefused(
                f"device {address_text(address)} is banned: readings refused; only a "
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
                f"device {address_text(address)} is restricted {until}: readings refused",
                "device_restricted",
            )
        error = checked.signature_error
        if error is not None:
            if self.config.strike_bad_signatures:
                self._strike(address, DeviceOffence.UNSIGNED, checked.signed)
            return ReadingRefused(error.message, error.code)
        return device

    def _admit(
        self,
        checked: CheckedReading,
        device: Device,
        group: dict[bytes, tuple[SignedReading, Device]],
        pending: Container[bytes],
        now: float,
        now_ms: int,
    ) -> Accepted:
        """Resend, replay guard, rate limit, profile and time for a signed reading of a
        device in force; adds it to `group` if accepted."""
        signed = checked.signed
        reading = signed.reading
        address = device.device
        rid = signed.reading_id
        if rid in group or rid in pending:
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
        wait = self._take_token(address, now)
        if wait is not None:
            self._strike(address, DeviceOffence.RATE_LIMIT, signed)
            raise ReadingRefused(
                f"device {address_text(address)} sends more than "
                f"{self.config.rate_per_minute} readings a minute (burst "
                f"{self.config.rate_burst}); retry in {wait:.1f} s",
                "rate_limited",
                retry_after_s=wait,
            )
        patient = address_text(device.patient)
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

    def _take_token(self, device: bytes, now: float) -> float | None:
        """None if the device may send now, else the seconds until it may."""
        rate = self.config.rate_per_minute / 60
        bucket = self._buckets.setdefault(device, _Bucket(self.config.rate_burst, now))
        bucket.tokens = min(self.config.rate_burst, bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return None
        return (1 - bucket.tokens) / rate

    # -- strikes ----------------------------------------------------------------------------

    @property
    def has_strikes(self) -> bool:
        return bool(self._strikes)

    def take_strikes(self) -> list[Strike]:
        """The strikes made since the last call, to report, in a stable order."""
        strikes, self._strikes = self._strikes, {}
        return [(d, o, e) for (d, o), e in sorted(strikes.items())]

    def _strike(self, device: bytes, offence: DeviceOffence, signed: SignedReading) -> None:
        self._strikes.setdefault((device, offence), _evidence(signed))


def device_addresses(readings: Sequence[CheckedReading]) -> list[bytes]:
    """The address of each reading's device (from the public key it names)."""
    return [address_from_public_key(c.signed.reading.device) for c in readings]


__all__ = [
    "Accepted",
    "Admission",
    "Answer",
    "DeviceRecords",
    "ReadingRefused",
    "Strike",
    "device_addresses",
]
