"""Simulated devices: seeded, realistic vitals streams for load tests and demos, and
misbehaving devices for testing the gateway's strikes.

Each honest device is a bounded random walk around a resting value with occasional
events (a tachycardia run, a desaturation dip, a fever, a hypertensive reading, a fall),
so the gateway sees streams that look like patients, not uniform noise. One seed gives
one stream: runs are reproducible.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from medchain.client import canonical_json
from medchain.crypto import AccountKeys, tagged_hash
from medchain.gateway._readings import SignedReading, sign_reading
from medchain.gateway._vitals import (
    BLOOD_PRESSURE_PANEL,
    BODY_TEMPERATURE,
    DIASTOLIC,
    FALL_CODE,
    HEART_RATE,
    LOINC,
    OBSERVATION_CATEGORY,
    OXYGEN_SATURATION,
    SNOMED,
    SYSTOLIC,
    UCUM,
    VITAL_SIGNS,
    VitalSpec,
    device_reference,
)


class DeviceKind(enum.Enum):
    HEART_RATE_BAND = "heart-rate-band"
    PULSE_OXIMETER = "pulse-oximeter"
    THERMOMETER = "thermometer"
    BLOOD_PRESSURE_CUFF = "blood-pressure-cuff"
    FALL_DETECTOR = "fall-detector"


class Misbehaviour(enum.Enum):
    """What a bad device does: each mode breaks exactly one gateway rule."""

    BAD_SIGNATURE = "bad-signature"  # one flipped bit in the signature
    NON_CONFORMING = "non-conforming"  # a physiologically impossible value
    REPLAY = "replay"  # resends an earlier reading with its old sequence number
    FLOOD = "flood"  # valid readings, but many per millisecond window instead of one per interval


_CATEGORY = [
    {"coding": [{"system": OBSERVATION_CATEGORY, "code": VITAL_SIGNS, "display": "Vital Signs"}]}
]
# Resting value, walk step, event value, and how far the walk may stray from rest.
_WALKS: dict[DeviceKind, tuple[float, float, float, float]] = {
    DeviceKind.HEART_RATE_BAND: (72.0, 2.0, 145.0, 25.0),
    DeviceKind.PULSE_OXIMETER: (97.0, 0.5, 86.0, 3.0),
    DeviceKind.THERMOMETER: (36.8, 0.05, 39.2, 0.7),
    DeviceKind.BLOOD_PRESSURE_CUFF: (120.0, 3.0, 175.0, 20.0),
}
_EVENT_CHANCE = 0.01
_FALL_CHANCE = 0.002


def _device_keys(kind: DeviceKind, patient: str, seed: int) -> AccountKeys:
    """Keys derived from the seed, so a simulated fleet is the same fleet on every run."""
    label = f"{kind.value}/{patient}/{seed}".encode()
    return AccountKeys(
        tagged_hash("medchain/sim-device-signing", label),
        tagged_hash("medchain/sim-device-encryption", label),
    )


def _iso(ms: int) -> str:
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _quantity(value: float, spec: VitalSpec, display: str) -> dict[str, Any]:
    return {"value": value, "unit": display, "system": UCUM, "code": spec.unit}


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


class SimulatedDevice:
    """An honest device of one kind, worn by `patient`, reading every `interval_ms`.
    Without `keys`, its keys derive from (kind, patient, seed): one seed, one stream."""

    def __init__(
        self,
        kind: DeviceKind,
        patient: str,
        *,
        keys: AccountKeys | None = None,
        seed: int = 0,
        start_ms: int = 1_714_550_400_000,  # 2024-05-01T08:00:00Z
        interval_ms: int = 60_000,
    ) -> None:
        self.kind = kind
        self.patient = patient
        self.keys = keys if keys is not None else _device_keys(kind, patient, seed)
        self.interval_ms = interval_ms
        self.next_sequence = 0
        self.now_ms = start_ms
        self._rng = random.Random(f"{kind.value}/{seed}")
        self._level = _WALKS[kind][0] if kind in _WALKS else 0.0

    def observation(self, time_ms: int) -> dict[str, Any]:
        """The next measurement as a FHIR Observation dict (advances the walk)."""
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "category": _CATEGORY,
            "subject": {"reference": f"Patient/{self.patient}"},
            "device": {"reference": device_reference(self.keys.public_key)},
            "effectiveDateTime": _iso(time_ms),
        }
        if self.kind is DeviceKind.FALL_DETECTOR:
            obs["code"] = _concept(SNOMED, FALL_CODE, "Fall")
            obs["valueBoolean"] = self._rng.random() < _FALL_CHANCE
            return obs
        value = self._step()
        if self.kind is DeviceKind.HEART_RATE_BAND:
            obs["code"] = _concept(LOINC, HEART_RATE.code, "Heart rate")
            obs["valueQuantity"] = _quantity(round(value), HEART_RATE, "beats/minute")
        elif self.kind is DeviceKind.PULSE_OXIMETER:
            obs["code"] = _concept(LOINC, OXYGEN_SATURATION.code, "Oxygen saturation")
            obs["valueQuantity"] = _quantity(min(100, round(value)), OXYGEN_SATURATION, "%")
        elif self.kind is DeviceKind.THERMOMETER:
            obs["code"] = _concept(LOINC, BODY_TEMPERATURE.code, "Body temperature")
            obs["valueQuantity"] = _quantity(round(value, 1), BODY_TEMPERATURE, "C")
        else:
            systolic = round(value)
            diastolic = round(systolic * 0.66 + self._rng.uniform(-4, 4))
            obs["code"] = _concept(LOINC, BLOOD_PRESSURE_PANEL, "Blood pressure panel")
            obs["component"] = [
                {
                    "code": _concept(LOINC, SYSTOLIC.code, "Systolic blood pressure"),
                    "valueQuantity": _quantity(systolic, SYSTOLIC, "mmHg"),
                },
                {
                    "code": _concept(LOINC, DIASTOLIC.code, "Diastolic blood pressure"),
                    "valueQuantity": _quantity(diastolic, DIASTOLIC, "mmHg"),
                },
            ]
        return obs

    def _step(self) -> float:
        rest, step, event, spread = _WALKS[self.kind]
        if self._rng.random() < _EVENT_CHANCE:
            return event  # one abnormal reading; the walk itself stays where it was
        # Mean-reverting walk: drift back towards rest, bounded to rest ± spread.
        self._level += self._rng.gauss(0, step) + (rest - self._level) * 0.1
        self._level = max(rest - spread, min(rest + spread, self._level))
        return self._level

    def next_reading(self) -> SignedReading:
        """Sign the next measurement and advance the clock by one interval."""
        time_ms = self.now_ms
        body = canonical_json(self.observation(time_ms))
        signed = sign_reading(self.keys, self.next_sequence, time_ms, body)
        self.next_sequence += 1
        self.now_ms += self.interval_ms
        return signed

    def stream(self, count: int) -> Iterator[SignedReading]:
        for _ in range(count):
            yield self.next_reading()


class MisbehavingDevice(SimulatedDevice):
    """A device that breaks one rule (`mode`) on every reading it sends after the first
    `honest_first` readings, which are honest (so it registers and is trusted first)."""

    def __init__(
        self,
        kind: DeviceKind,
        patient: str,
        mode: Misbehaviour,
        *,
        honest_first: int = 1,
        keys: AccountKeys | None = None,
        seed: int = 0,
        start_ms: int = 1_714_550_400_000,
        interval_ms: int = 60_000,
    ) -> None:
        super().__init__(
            kind, patient, keys=keys, seed=seed, start_ms=start_ms, interval_ms=interval_ms
        )
        self.mode = mode
        self.honest_first = honest_first
        self._sent: list[SignedReading] = []

    def next_reading(self) -> SignedReading:
        if len(self._sent) < self.honest_first:
            signed = super().next_reading()
        elif self.mode is Misbehaviour.BAD_SIGNATURE:
            good = super().next_reading()
            flipped = bytes([good.signature[0] ^ 0x01]) + good.signature[1:]
            signed = SignedReading(good.reading, flipped)
        elif self.mode is Misbehaviour.NON_CONFORMING:
            signed = self._impossible()
        elif self.mode is Misbehaviour.REPLAY:
            signed = self._sent[self._rng.randrange(len(self._sent))]
        else:  # FLOOD: a new reading every millisecond instead of every interval
            interval, self.interval_ms = self.interval_ms, 1
            signed = super().next_reading()
            self.interval_ms = interval
        self._sent.append(signed)
        return signed

    def _impossible(self) -> SignedReading:
        time_ms = self.now_ms
        obs = self.observation(time_ms)
        if self.kind is DeviceKind.FALL_DETECTOR:
            obs["valueBoolean"] = "maybe"
        elif self.kind is DeviceKind.BLOOD_PRESSURE_CUFF:
            obs["component"][0]["valueQuantity"]["value"] = 900
        else:
            obs["valueQuantity"]["value"] = 900
        signed = sign_reading(self.keys, self.next_sequence, time_ms, canonical_json(obs))
        self.next_sequence += 1
        self.now_ms += self.interval_ms
        return signed
