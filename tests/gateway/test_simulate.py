from __future__ import annotations

import pytest

from medchain.gateway import (
    BadReading,
    DeviceKind,
    MisbehavingDevice,
    Misbehaviour,
    NonConformingReading,
    SequenceGuard,
    SimulatedDevice,
    VitalKind,
    validate_vital,
    verify_reading,
)

KIND_OF = {
    DeviceKind.HEART_RATE_BAND: VitalKind.HEART_RATE,
    DeviceKind.PULSE_OXIMETER: VitalKind.OXYGEN_SATURATION,
    DeviceKind.THERMOMETER: VitalKind.BODY_TEMPERATURE,
    DeviceKind.BLOOD_PRESSURE_CUFF: VitalKind.BLOOD_PRESSURE,
    DeviceKind.FALL_DETECTOR: VitalKind.FALL,
}


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_honest_devices_always_pass(kind: DeviceKind) -> None:
    device = SimulatedDevice(kind, "patient-1", seed=11, interval_ms=1000)
    guard = SequenceGuard()
    values = []
    for signed in device.stream(2000):
        verify_reading(signed)
        guard.check(signed.reading)
        guard.record(signed.reading)
        vital = validate_vital(signed.reading.observation, signed.reading.device)
        assert vital.kind is KIND_OF[kind] and vital.patient == "patient-1"
        assert vital.time_ms == signed.reading.timestamp_ms
        values.append(vital.values[0])
    assert len(set(values)) > 1  # it varies
    if kind is DeviceKind.HEART_RATE_BAND:
        assert 55 <= sorted(values)[len(values) // 2] <= 90  # resting-ish median


def test_one_seed_gives_one_stream() -> None:
    def run(seed: int) -> list[bytes]:
        device = SimulatedDevice(DeviceKind.THERMOMETER, "p", seed=seed)
        return [s.reading.observation for s in device.stream(50)]

    assert run(1) == run(1) != run(2)


def misbehaving(mode: Misbehaviour, kind: DeviceKind) -> MisbehavingDevice:
    return MisbehavingDevice(kind, "p", mode, honest_first=3, seed=5)


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_bad_signatures_are_refused(kind: DeviceKind) -> None:
    device = misbehaving(Misbehaviour.BAD_SIGNATURE, kind)
    readings = list(device.stream(10))
    for signed in readings[:3]:
        verify_reading(signed)
    for signed in readings[3:]:
        with pytest.raises(BadReading) as info:
            verify_reading(signed)
        assert info.value.code == "bad_signature"
        validate_vital(signed.reading.observation, signed.reading.device)  # only the signature


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_non_conforming_values_are_refused(kind: DeviceKind) -> None:
    device = misbehaving(Misbehaviour.NON_CONFORMING, kind)
    for signed in list(device.stream(8))[3:]:
        verify_reading(signed)
        with pytest.raises(NonConformingReading):
            validate_vital(signed.reading.observation, signed.reading.device)


def test_replays_reuse_old_sequence_numbers() -> None:
    device = misbehaving(Misbehaviour.REPLAY, DeviceKind.HEART_RATE_BAND)
    guard = SequenceGuard()
    readings = list(device.stream(10))
    for signed in readings[:3]:
        guard.check(signed.reading)
        guard.record(signed.reading)
    for signed in readings[3:]:
        verify_reading(signed)  # a genuine old reading
        with pytest.raises(BadReading) as info:
            guard.check(signed.reading)
        assert info.value.code == "replayed"


def test_floods_send_valid_readings_far_too_fast() -> None:
    device = misbehaving(Misbehaviour.FLOOD, DeviceKind.PULSE_OXIMETER)
    readings = list(device.stream(103))[3:]
    times = [s.reading.timestamp_ms for s in readings]
    assert times[-1] - times[0] < 1000 < device.interval_ms  # 100 readings in under a second
    guard = SequenceGuard()
    for signed in readings:
        verify_reading(signed)
        guard.check(signed.reading)
        guard.record(signed.reading)
        validate_vital(signed.reading.observation, signed.reading.device)
