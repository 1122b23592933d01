"""The stateless checks of a reading, in this process and in intake worker processes:
each outcome (signature, profile, parse) is reported, not decided; the workers give
exactly what the process itself would; a worker that dies is reported and replaced."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from typing import Any

import pytest

from medchain.crypto import format_address
from medchain.gateway import (
    BadReading,
    CheckedReading,
    DeviceKind,
    IntakeCheckers,
    MisbehavingDevice,
    Misbehaviour,
    NonConformingReading,
    SignedReading,
    SimulatedDevice,
    VitalKind,
    check_reading,
    reading_to_json,
    sign_reading,
)
from medchain.gateway._intake import (
    check_json,
    check_json_array,
    check_payloads,
    tune_collector,
)
from medchain.types import MedchainError
from tests.waiting import until

PATIENT = format_address(bytes(20))


def _reading(kind: DeviceKind = DeviceKind.THERMOMETER, seed: int = 1) -> SignedReading:
    return SimulatedDevice(kind, PATIENT, seed=seed).next_reading()


def _bad(mode: Misbehaviour) -> SignedReading:
    device = MisbehavingDevice(DeviceKind.HEART_RATE_BAND, PATIENT, mode, honest_first=0, seed=2)
    return device.next_reading()


def _outcome(item: CheckedReading | BadReading) -> tuple[Any, ...]:
    """What a result says, comparable (exceptions compare by identity)."""

    def error(exc: BadReading | None) -> tuple[str, str] | None:
        return None if exc is None else (exc.code, exc.message)

    if isinstance(item, BadReading):
        return ("refused", error(item))
    vital = error(item.vital) if isinstance(item.vital, NonConformingReading) else item.vital
    return (item.signed, item.signed.reading_id, error(item.signature_error), vital)


def test_an_honest_reading_passes_every_check() -> None:
    signed = _reading()
    checked = check_reading(signed)
    assert checked.signature_error is None
    assert not isinstance(checked.vital, NonConformingReading)
    assert checked.vital.kind is VitalKind.BODY_TEMPERATURE and checked.vital.patient == PATIENT
    assert checked.signed.reading_id == signed.reading_id


def test_a_reading_whose_two_times_disagree_does_not_conform() -> None:
    device = SimulatedDevice(DeviceKind.THERMOMETER, PATIENT, seed=1)
    honest = device.next_reading().reading
    other = sign_reading(device.keys, 1, honest.timestamp_ms + 60_000, honest.observation)
    checked = check_reading(other)
    assert checked.signature_error is None
    assert isinstance(checked.vital, NonConformingReading)
    assert "is not the reading's signed time" in checked.vital.message


def test_outcomes_are_reported_not_raised() -> None:
    forged = check_reading(_bad(Misbehaviour.BAD_SIGNATURE))
    assert forged.signature_error is not None
    assert forged.signature_error.code == "bad_signature"
    assert not isinstance(forged.vital, NonConformingReading)  # its profile is fine
    impossible = check_reading(_bad(Misbehaviour.NON_CONFORMING))
    assert impossible.signature_error is None
    assert isinstance(impossible.vital, NonConformingReading)
    assert "not a plausible heart rate" in impossible.vital.message


def test_json_forms_are_parsed_strictly() -> None:
    good, other = _reading(seed=1), _reading(DeviceKind.PULSE_OXIMETER, seed=2)
    assert check_json(reading_to_json(good)).signed == good
    with pytest.raises(BadReading) as info:
        check_json(b'{"v":1}')
    assert info.value.code == "malformed"
    body = b"[" + reading_to_json(good) + b',{"v":2},' + reading_to_json(other) + b"]"
    results = check_json_array(body, 10)
    assert isinstance(results[0], CheckedReading) and results[0].signed == good
    assert isinstance(results[1], BadReading) and results[1].code == "malformed"
    assert isinstance(results[2], CheckedReading) and results[2].signed == other
    with pytest.raises(BadReading) as info:
        check_json_array(body, 2)
    assert info.value.code == "too_many"
    payloads = check_payloads([reading_to_json(good), b"not json"])
    assert isinstance(payloads[0], CheckedReading)
    assert isinstance(payloads[1], BadReading) and payloads[1].code == "malformed"


def test_without_workers_the_checks_run_through_the_callers_call() -> None:
    calls: list[int] = []

    async def call(fn: Any, *args: Any) -> Any:
        calls.append(len(args[0]))
        return fn(*args)

    checked = asyncio.run(IntakeCheckers(0, call).check_json(reading_to_json(_reading())))
    assert calls == [1] and checked.signature_error is None
    inline = asyncio.run(IntakeCheckers(0).check_json(reading_to_json(_reading())))
    assert inline.signed == checked.signed


def test_requests_arriving_while_a_call_runs_go_together_in_the_next() -> None:
    calls: list[int] = []

    async def call(fn: Any, *args: Any) -> Any:
        calls.append(len(args[0]))
        await asyncio.sleep(0.01)  # a busy call (the behaviour): other requests queue up
        return fn(*args)

    readings = [_reading(seed=i) for i in range(10)]

    async def main() -> list[CheckedReading]:
        checkers = IntakeCheckers(0, call)
        return await asyncio.gather(*(checkers.check_json(reading_to_json(r)) for r in readings))

    checked = asyncio.run(main())
    assert [c.signed for c in checked] == readings  # each request its own answer
    assert calls == [1, 9]


def test_workers_give_what_this_process_would_and_survive_a_dead_worker() -> None:
    readings = [
        _reading(seed=3),
        _bad(Misbehaviour.BAD_SIGNATURE),
        _bad(Misbehaviour.NON_CONFORMING),
    ]
    body = b"[" + b",".join(reading_to_json(r) for r in readings) + b',{"v":1}]'
    payload = [reading_to_json(readings[0])]
    checkers = IntakeCheckers(1)

    async def main() -> None:
        checkers.start()
        remote, whole, single = await asyncio.gather(
            checkers.check_json_array(body, 10),
            checkers.check_json_array(body, 2),  # a whole-request refusal crosses too
            checkers.check_json(reading_to_json(readings[1])),
            return_exceptions=True,
        )
        assert isinstance(remote, list)
        local = check_json_array(body, 10)
        assert [_outcome(r) for r in remote] == [_outcome(r) for r in local]
        assert isinstance(remote[1], CheckedReading) and remote[1].signature_error is not None
        assert remote[1].signature_error.code == "bad_signature"
        assert isinstance(remote[3], BadReading) and remote[3].code == "malformed"
        assert isinstance(whole, BadReading) and whole.code == "too_many"
        assert isinstance(single, CheckedReading) and single.signed == readings[1]
        pool = checkers._pool
        assert pool is not None
        for pid in list(pool._processes):
            os.kill(pid, signal.SIGKILL)
        await until(lambda: pool._broken, what="the pool to notice its dead worker")
        with pytest.raises(MedchainError, match="intake worker"):
            await checkers.check_payloads(payload)
        again = await checkers.check_payloads(payload)
        assert [_outcome(r) for r in again] == [_outcome(r) for r in check_payloads(payload)]

    try:
        asyncio.run(main())
    finally:
        checkers.close()


def test_the_collector_is_tuned_for_many_short_lived_objects() -> None:
    before = gc.get_threshold()
    try:
        tune_collector()
        assert gc.get_threshold() == (100_000, 50, 100)
        assert gc.get_freeze_count() > 0  # start-up's objects are left out of collections
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
