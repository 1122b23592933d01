"""The batcher alone, on a fake clock: when a batch is due (by size or by the age of the
oldest waiting reading), what a batch takes, and that readings of a failed batch wait
again while those of a committed one are forgotten. No threads, no sleeps."""

from __future__ import annotations

import pytest

from medchain.app import MS_PER_DAY
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import BatchEntry, DeviceKind, SimulatedDevice
from medchain.gateway import _batcher as batcher_module
from medchain.gateway._batcher import (
    BUNDLE_BYTES,
    DEVICE_BYTES,
    TX_OVERHEAD_BYTES,
    Batcher,
    select_batch,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 500.0

    def __call__(self) -> float:
        return self.now


def _entries(count: int, *, patients: int = 1, day_step_ms: int = 60_000) -> list[BatchEntry]:
    """`count` readings, one device per patient, taken in turn by the patients' devices."""
    sims = [
        SimulatedDevice(
            DeviceKind.THERMOMETER,
            format_address(AccountKeys.generate().address),
            seed=i,
            interval_ms=day_step_ms,
        )
        for i in range(patients)
    ]
    return [
        BatchEntry(sim.patient, sim.next_reading())
        for i in range(count)
        for sim in (sims[i % patients],)
    ]


def _by_id(entries: list[BatchEntry]) -> dict[bytes, BatchEntry]:
    return {e.reading.reading_id: e for e in entries}


def test_a_batch_is_due_once_its_oldest_reading_waited_the_delay() -> None:
    clock = FakeClock()
    batcher = Batcher(clock, max_readings=10, max_delay_ms=1_000)
    assert not batcher.due()  # nothing waits
    first, second = _entries(2)
    batcher.add(_by_id([first]))
    clock.now += 0.6
    batcher.add(_by_id([second]))  # a later reading does not restart the wait
    assert not batcher.due()
    clock.now += 0.399
    assert not batcher.due()
    clock.now += 0.001
    assert batcher.due() and len(batcher) == 2


def test_a_full_batch_is_due_at_once() -> None:
    batcher = Batcher(FakeClock(), max_readings=3, max_delay_ms=60_000)
    batcher.add(_by_id(_entries(2)))
    assert not batcher.due()
    batcher.add(_by_id(_entries(1)))
    assert batcher.due()


def test_take_gives_the_oldest_readings_and_the_next_take_the_rest() -> None:
    entries = _entries(7)
    batcher = Batcher(FakeClock(), max_readings=3, max_delay_ms=1_000)
    batcher.add(_by_id(entries))
    first = batcher.take(max_tx_bytes=1_000_000)
    second = batcher.take(max_tx_bytes=1_000_000)  # while the first is being committed
    third = batcher.take(max_tx_bytes=1_000_000)
    assert first == entries[:3] and second == entries[3:6] and third == entries[6:]
    assert batcher.take(max_tx_bytes=1_000_000) == []  # every reading is in a batch
    assert len(batcher) == 7 and all(e.reading.reading_id in batcher for e in entries)
    assert set(batcher.ids) == {e.reading.reading_id for e in entries}


def test_a_released_batch_waits_again_and_a_done_one_is_forgotten() -> None:
    clock = FakeClock()
    entries = _entries(4)
    batcher = Batcher(clock, max_readings=2, max_delay_ms=1_000)
    batcher.add(_by_id(entries))
    failed, committed = batcher.take(1_000_000), batcher.take(1_000_000)
    batcher.done(committed)
    assert len(batcher) == 2 and all(e.reading.reading_id not in batcher for e in committed)
    clock.now += 1
    assert batcher.due()  # the failed batch's readings are due by their own age
    batcher.release(failed)
    assert batcher.take(1_000_000) == failed


def test_a_reading_left_waiting_by_a_batch_is_due_by_its_own_age() -> None:
    clock = FakeClock()
    first, second, third = _entries(3)
    batcher = Batcher(clock, max_readings=2, max_delay_ms=1_000)
    batcher.add(_by_id([first]))
    clock.now += 0.5
    batcher.add(_by_id([second, third]))
    taken = batcher.take(1_000_000)
    assert taken == [first, second]
    clock.now += 0.25  # the batch takes its time to commit
    batcher.done(taken)
    assert not batcher.due()  # the third waited 0.25 s of its 1 s
    clock.now += 0.75
    assert batcher.due()  # not a whole delay after the batch was done


def test_readings_pending_at_a_restart_wait_from_the_restart() -> None:
    clock = FakeClock()
    batcher = Batcher(clock, max_readings=10, max_delay_ms=1_000, pending=_entries(2))
    assert len(batcher) == 2 and not batcher.due()
    clock.now += 1
    assert batcher.due()


def test_a_batch_holds_at_most_the_chains_bundles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batcher_module, "MAX_BATCH_BUNDLES", 2)
    # one patient's readings half a day apart: 1, 2 and 2 readings on three days
    (sim,) = [SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)), seed=1)]
    sim.now_ms, sim.interval_ms = 19_845 * MS_PER_DAY - 60_000, MS_PER_DAY // 2
    entries = [BatchEntry(sim.patient, sim.next_reading()) for _ in range(5)]
    chosen = select_batch(entries, max_readings=10, max_tx_bytes=1_000_000)
    assert chosen == entries[:3]  # the first two days
    assert select_batch(entries[3:], max_readings=10, max_tx_bytes=1_000_000) == entries[3:]


def test_a_batch_stays_under_the_transaction_size_limit() -> None:
    entries = _entries(10, patients=10)  # ten patients: ten bundles of one device
    limit = TX_OVERHEAD_BYTES + 4 * (BUNDLE_BYTES + DEVICE_BYTES) + BUNDLE_BYTES
    chosen = select_batch(entries, max_readings=100, max_tx_bytes=limit)
    assert chosen == entries[:4]  # a fifth bundle fits, its device does not
    assert (
        select_batch(entries, max_readings=100, max_tx_bytes=limit + DEVICE_BYTES) == (entries[:5])
    )
    assert select_batch(entries, max_readings=3, max_tx_bytes=1_000_000) == entries[:3]
