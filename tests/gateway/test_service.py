"""The gateway pipeline end to end on an in-process LocalChain: honest readings are
committed in batches and provable against the chain's root; every refusal has its
strike on chain; the replay guard and pending readings survive a restart."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from medchain.api import create_api
from medchain.app import MS_PER_DAY, DeviceOffence, DeviceState, Role
from medchain.app import DeviceKind as ChainDeviceKind
from medchain.client import HttpChain, MedchainClient, NodeError
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import (
    DeviceKind,
    SignedReading,
    SimulatedDevice,
    sign_reading,
    verify_proof,
)
from medchain.gateway import _batcher as batcher_module
from medchain.gateway._config import GatewayConfig
from medchain.gateway._index import ReadingIndex
from medchain.gateway._service import (
    Accepted,
    GatewayService,
    ReadingRefused,
    SealedBundle,
    open_bundle,
)
from medchain.node import DisclosureLog, LocalChain
from medchain.types import MedchainError, Tx, decode
from tests.api.harness import FakeNode, SyncASGITransport, admin, clinician, make_chain

PARAMS = {"device_strikes_restrict": 2, "device_strikes_ban": 4, "device_restrict_blocks": 50}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class World:
    chain: LocalChain
    patient: MedchainClient
    guardian: MedchainClient
    hospital: MedchainClient
    gateway_keys: AccountKeys
    clock: Clock

    def device(self, kind: DeviceKind = DeviceKind.PULSE_OXIMETER) -> SimulatedDevice:
        sim = SimulatedDevice(
            kind, format_address(self.patient.address), keys=AccountKeys.generate()
        )
        # the hospital registers it, so may lift a penalty on it or ban it
        self.hospital.register_device(
            sim.keys, self.patient.address, ChainDeviceKind.PULSE_OXIMETER, "d"
        )
        return sim

    def service(
        self,
        index: ReadingIndex,
        wall_clock: Clock | None = None,
        disclosures: DisclosureLog | None = None,
        **config: object,
    ) -> GatewayService:
        base = GatewayConfig(batch_max_readings=5, device_cache_ms=0, readers_cache_ms=0)
        cfg = replace(base, **config)  # type: ignore[arg-type]
        return GatewayService(
            self.gateway_keys,
            self.chain,
            index,
            cfg,
            disclosures=disclosures,
            clock=self.clock,
            wall_clock=wall_clock or time.time,
        )


@pytest.fixture
def world() -> World:
    validator = AccountKeys.generate()
    chain = make_chain(validator, **PARAMS)
    funder = MedchainClient(validator, chain)
    people = []
    for _ in range(2):
        person = MedchainClient(AccountKeys.generate(), chain)
        person.register(Role.PATIENT, "a patient")
        people.append(person)
    patient, guardian = people
    hospital = admin(chain)  # the founding hospital's admin
    patient.add_guardian(guardian.address)
    gateway_keys = AccountKeys.generate()
    funder.transfer(gateway_keys.address, 100_000)
    hospital.register_gateway(gateway_keys.address, "ward 3")
    return World(chain, patient, guardian, hospital, gateway_keys, Clock())


def _refused(service: GatewayService, signed: SignedReading, code: str) -> ReadingRefused:
    with pytest.raises(ReadingRefused) as info:
        service.submit(signed)
    assert info.value.code == code, info.value.message
    return info.value


def test_honest_readings_are_committed_and_provable(world: World) -> None:
    service = world.service(ReadingIndex(":memory:"))
    devices = [world.device() for _ in range(2)]
    readings = [d.next_reading() for _ in range(6) for d in devices]
    ids = [service.submit(r).reading_id for r in readings]
    assert service.status(ids[0]).state == "pending"
    batch_ids = service.flush()
    assert len(batch_ids) == 3 and service.pending_count == 0  # 12 readings, 5 a batch
    for rid in ids:
        status = service.status(rid)
        assert status.state == "committed" and status.committed is not None
        on_chain = world.chain.batch(status.committed.batch_id)
        assert on_chain is not None
        assert verify_proof(status.committed.proof, on_chain.root)
    # the patient and the guardian can open the bundle; the bundle holds the readings
    first = service.status(ids[0]).committed
    assert first is not None
    batch = world.chain.batch(first.batch_id)
    assert batch is not None
    blob = world.chain.blobs.get(batch.bundles[0].cid)
    for reader in (world.patient, world.guardian):
        bundle = open_bundle(
            reader.keys, blob, batch.root, world.patient.address, batch.bundles[0].day
        )
        assert ids[0] in {r.reading_id for r in bundle.readings}
    # a resend of a committed reading is acknowledged again, not struck
    assert service.submit(readings[0]) == Accepted(ids[0], duplicate=True)


def test_reading_times_are_checked_against_the_clock_without_strikes(world: World) -> None:
    sim = world.device()
    now = Clock()
    now.now = sim.now_ms / 1000  # the gateway's wall clock reads the device's first reading
    service = world.service(ReadingIndex(":memory:"), now, max_reading_age_days=2)
    start = sim.now_ms

    def at(time_ms: int) -> SignedReading:
        sim.now_ms = time_ms
        return sim.next_reading()

    service.submit(at(start))
    service.submit(at(start + 300_000))  # five minutes of drift is allowed
    ahead = _refused(service, at(start + 300_001 + 3_600_000), "bad_time")
    assert ahead.status == 422 and "3900 s ahead of the gateway's clock" in ahead.message
    service.submit(at(start - 2 * MS_PER_DAY + 1))  # buffered while offline: in time
    old = _refused(service, at(start - 3 * MS_PER_DAY), "bad_time")
    assert "taken 3 days ago" in old.message and "max_reading_age_days" in old.message
    # a refused reading burns no sequence number: the device sends it again, set right
    sim.next_sequence -= 1
    service.submit(at(start + 1_000))
    service.flush()
    device = world.chain.device(sim.keys.address)
    assert device is not None and device.strikes == 0 and service.pending_count == 0
    # with no age limit (the default), a reading of any age is taken
    any_age = world.service(ReadingIndex(":memory:"), now)
    sim.next_sequence = 0
    any_age.submit(at(start - 1000 * MS_PER_DAY))


def test_refusals_strike_the_device_until_banned(world: World) -> None:
    service = world.service(ReadingIndex(":memory:"), rate_burst=4, rate_per_minute=1)
    sim = world.device()
    address = sim.keys.address
    first = sim.next_reading()
    service.submit(first)
    assert service.submit(first).duplicate  # a resend: no strike
    # replay: a new reading signed with an old sequence number
    stale = sign_reading(sim.keys, 0, first.reading.timestamp_ms + 1, first.reading.observation)
    _refused(service, stale, "replayed")
    # a second replay in the same window is refused but not struck again
    stale2 = sign_reading(sim.keys, 0, first.reading.timestamp_ms + 2, first.reading.observation)
    _refused(service, stale2, "replayed")
    # non-conforming: the observation is not a vital sign
    _refused(service, sign_reading(sim.keys, 5, 1, b'{"resourceType":"Patient"}'), "non_conforming")
    service.flush()
    device = world.chain.device(address)
    assert device is not None and device.strikes == 2
    assert device.state_at(world.chain.height) is DeviceState.RESTRICTED
    refusal = _refused(service, sim.next_reading(), "device_restricted")
    assert refusal.status == 403
    assert f"restricted until height {device.restricted_until}" in refusal.message
    # the hospital lifts it (strikes cleared); rate limit + non-conforming restrict it again
    world.hospital.set_device_state(address, DeviceState.ACTIVE, "checked")
    for _ in range(2):
        service.submit(sim.next_reading())
    limited = _refused(service, sim.next_reading(), "rate_limited")
    assert limited.status == 429 and limited.retry_after_s is not None
    world.clock.now += 60  # one token back
    _refused(service, sign_reading(sim.keys, 99, 1, b"{}"), "non_conforming")
    service.flush()
    device = world.chain.device(address)
    assert device is not None and device.state_at(world.chain.height) is DeviceState.RESTRICTED
    world.clock.now += 120  # tokens refill; the restriction holds on chain
    _refused(service, sim.next_reading(), "device_restricted")
    world.hospital.set_device_state(address, DeviceState.BANNED, "stolen")
    _refused(service, sim.next_reading(), "device_banned")
    assert world.chain.device_audit(address)[-1].state is DeviceState.BANNED


def test_penalty_path_to_ban_on_chain(world: World) -> None:
    service = world.service(ReadingIndex(":memory:"), strike_bad_signatures=True)
    sim = world.device()
    address = sim.keys.address
    good = sim.next_reading()
    forged = SignedReading(good.reading, b"\x00" * 64)
    _refused(service, forged, "bad_signature")
    service.submit(good)
    _refused(service, sign_reading(sim.keys, 0, 7, good.reading.observation), "replayed")
    service.flush()  # two strikes: restricted
    device = world.chain.device(address)
    assert device is not None and device.strikes == 2
    # another strike while restricted bans it (reported directly by the gateway)
    service.client.report_device(address, DeviceOffence.REPLAY, b"more")
    _refused(service, sim.next_reading(), "device_banned")


def test_unknown_device_and_wrong_patient(world: World) -> None:
    service = world.service(ReadingIndex(":memory:"))
    stranger = SimulatedDevice(DeviceKind.THERMOMETER, format_address(world.patient.address))
    assert _refused(service, stranger.next_reading(), "unknown_device").status == 404
    sim = world.device()
    other = SimulatedDevice(
        DeviceKind.PULSE_OXIMETER, format_address(world.guardian.address), keys=sim.keys
    )
    _refused(service, other.next_reading(), "non_conforming")


def test_replay_guard_and_pending_survive_a_restart(world: World, tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    sim = world.device()
    service = world.service(ReadingIndex(path))
    readings = [sim.next_reading() for _ in range(3)]
    for r in readings:
        service.submit(r)
    service.index.close()
    restarted = world.service(ReadingIndex(path))
    assert restarted.pending_count == 3
    _refused(restarted, sign_reading(sim.keys, 1, 5, readings[1].reading.observation), "replayed")
    restarted.flush()
    assert all(restarted.status(r.reading_id).state == "committed" for r in readings)


def test_a_group_is_checked_in_order_and_persisted_together(world: World, tmp_path: Path) -> None:
    path = tmp_path / "index.sqlite"
    sim = world.device()
    service = world.service(ReadingIndex(path), batch_max_readings=100)
    r0, r1 = sim.next_reading(), sim.next_reading()
    forged = SignedReading(r1.reading, bytes(64))
    stale = sign_reading(sim.keys, 0, 9, r0.reading.observation)
    results = service.submit_many([r0, r1, r1, forged, stale])
    assert results[0] == Accepted(r0.reading_id)
    assert results[1] == Accepted(r1.reading_id)
    assert results[2] == Accepted(r1.reading_id, duplicate=True)
    assert isinstance(results[3], ReadingRefused) and results[3].code == "bad_signature"
    assert isinstance(results[4], ReadingRefused) and results[4].code == "replayed"
    service.index.close()
    restarted = world.service(ReadingIndex(path))
    assert restarted.pending_count == 2


def test_a_group_that_cannot_be_stored_is_not_acknowledged_nor_remembered(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = world.service(ReadingIndex(":memory:"))
    sim = world.device()
    reading = sim.next_reading()

    def disk_full(*_: object) -> None:
        raise OSError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(service.index, "accept_many", disk_full)
        with pytest.raises(OSError):
            service.submit(reading)
    assert service.pending_count == 0
    assert service.submit(reading) == Accepted(reading.reading_id)  # not taken for a replay


def test_batches_hold_at_most_the_chains_bundles(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bundles are one per patient and UTC day: a batch takes at most MAX_BATCH_BUNDLES
    (patient, day) pairs, the rest wait for the next batch of the same flush."""
    monkeypatch.setattr(batcher_module, "MAX_BATCH_BUNDLES", 2)
    service = world.service(ReadingIndex(":memory:"))
    sim = world.device()
    sim.now_ms, sim.interval_ms = 19_845 * MS_PER_DAY - 60_000, MS_PER_DAY // 2
    readings = [sim.next_reading() for _ in range(5)]  # 1, 2 and 2 readings on 3 days
    for reading in readings:
        service.submit(reading)
    first, second = service.flush()
    batches = [world.chain.batch(first), world.chain.batch(second)]
    assert [[(b.day, b.count) for b in batch.bundles] for batch in batches if batch] == [
        [(19_844, 1), (19_845, 2)],
        [(19_846, 2)],
    ]
    assert all(service.status(r.reading_id).state == "committed" for r in readings)


def test_a_newly_shared_reader_is_sealed_for_once_the_readers_cache_expires(
    world: World,
) -> None:
    service = world.service(ReadingIndex(":memory:"), readers_cache_ms=10_000)
    sim = world.device()
    doctor = clinician(world.chain, "a doctor")

    def readers_of_next_batch() -> set[bytes]:
        service.submit(sim.next_reading())
        (batch_id,) = service.flush()
        batch = world.chain.batch(batch_id)
        assert batch is not None
        (bundle,) = batch.bundles
        sealed = decode(SealedBundle, world.chain.blobs.get(bundle.cid))
        return {w.reader for w in sealed.wraps}

    before = {world.patient.address, world.guardian.address}
    assert readers_of_next_batch() == before
    world.patient.share_vitals(doctor.address)
    world.clock.now += 5
    assert readers_of_next_batch() == before  # still the cached list
    world.clock.now += 6
    assert readers_of_next_batch() == before | {doctor.address}


def test_a_batch_stays_under_the_chains_transaction_size_limit() -> None:
    """Many patients: the gateway splits what is pending into batches whose transactions
    the chain accepts (here at most 5 bundles fit), and commits every reading."""
    validator = AccountKeys.generate()
    chain = make_chain(validator, max_tx_bytes=2_048, **PARAMS)
    funder = MedchainClient(validator, chain)
    hospital = admin(chain)
    gateway_keys = AccountKeys.generate()
    funder.transfer(gateway_keys.address, 100_000)
    hospital.register_gateway(gateway_keys.address, "ward 3")
    readings = []
    for _ in range(10):
        patient = MedchainClient(AccountKeys.generate(), chain)
        patient.register(Role.PATIENT, "a patient")
        sim = SimulatedDevice(
            DeviceKind.THERMOMETER, format_address(patient.address), keys=AccountKeys.generate()
        )
        patient.register_device(sim.keys, patient.address, ChainDeviceKind.THERMOMETER, "t")
        readings.append(sim.next_reading())
    config = GatewayConfig(device_cache_ms=0, readers_cache_ms=0)
    service = GatewayService(gateway_keys, chain, ReadingIndex(":memory:"), config)
    for r in readings:
        service.submit(r)
    batch_ids = service.flush()
    assert len(batch_ids) == 2
    sizes = []
    for batch_id in batch_ids:
        batch = chain.batch(batch_id)
        assert batch is not None
        sizes.append(batch.count)
    assert sizes == [5, 5]  # (2,048 - 1,024) // (160 + 21) bundles of one device each
    assert all(service.status(r.reading_id).state == "committed" for r in readings)


def test_a_bad_signature_in_a_large_group_is_refused_in_its_place(world: World) -> None:
    service = world.service(
        ReadingIndex(":memory:"), batch_max_readings=1_000, rate_per_minute=10_000, rate_burst=1_000
    )
    sims = [world.device() for _ in range(2)]
    readings = [s.next_reading() for _ in range(40) for s in sims]
    readings[33] = SignedReading(readings[33].reading, bytes(64))
    results = service.submit_many(readings)
    refused = [i for i, r in enumerate(results) if isinstance(r, ReadingRefused)]
    assert refused == [33]
    assert results[33].code == "bad_signature"  # type: ignore[union-attr]
    assert service.pending_count == len(readings) - 1


def test_the_next_batch_is_prepared_apart_from_the_one_committing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = world.service(ReadingIndex(":memory:"), batch_max_readings=3)
    sim = world.device()
    readings = [sim.next_reading() for _ in range(7)]
    service.submit_many(readings)
    first = service.prepare()
    second = service.prepare()  # while the first would be waiting for its block
    assert first is not None and second is not None
    ids = [{e.reading.reading_id for e in p.batch.entries} for p in (first, second)]
    assert len(ids[0]) == len(ids[1]) == 3 and not ids[0] & ids[1]

    def node_down(*_: object) -> bytes:
        raise MedchainError("the node did not answer")

    with monkeypatch.context() as patch:
        patch.setattr(service.committer, "submit", node_down)
        with pytest.raises(MedchainError):
            service.commit(first)
    assert service.commit(second)
    assert service.pending_count == 4  # the first batch's 3 and the 7th, none lost
    assert {s.reading_id for s in readings if service.status(s.reading_id).state == "pending"} == (
        ids[0] | {readings[6].reading_id}
    )
    assert len(service.flush()) == 2
    assert all(service.status(s.reading_id).state == "committed" for s in readings)


def test_a_reading_left_pending_by_a_batch_is_due_by_its_own_age(world: World) -> None:
    """A reading that waited while a batch was made and committed is not made to wait a
    whole batch delay more once that batch is done."""
    service = world.service(ReadingIndex(":memory:"), batch_max_readings=1)
    sim = world.device()
    service.submit(sim.next_reading())
    world.clock.now += 0.5
    service.submit(sim.next_reading())
    prepared = service.prepare()  # the first reading's batch (one reading a batch)
    assert prepared is not None and len(prepared.batch) == 1
    world.clock.now += 2.0  # the batch takes its time to commit
    service.commit(prepared)
    assert service.pending_count == 1
    assert service.due()  # accepted 2 s ago, past the 1 s batch delay
    world.clock.now += 0.1
    assert len(service.flush()) == 1 and not service.due()


def test_strikes_are_reported_while_a_flush_goes_on(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load one flush lasts as long as readings keep coming: a strike made
    meanwhile is reported after the batch in progress, not when the flush ends."""
    service = world.service(ReadingIndex(":memory:"), batch_max_readings=1)
    honest, bad = world.device(), world.device()
    service.submit(honest.next_reading())
    service.submit(honest.next_reading())
    commit = service.commit

    def commit_while_a_device_misbehaves(prepared: Any) -> bytes:
        batch_id = commit(prepared)
        if world.chain.device(bad.keys.address).strikes == 0:  # type: ignore[union-attr]
            _refused(service, sign_reading(bad.keys, 0, 1, b"{}"), "non_conforming")
        return batch_id

    monkeypatch.setattr(service, "commit", commit_while_a_device_misbehaves)
    strikes_after_each_batch = []
    prepare = service.prepare

    def prepare_and_count() -> Any:
        device = world.chain.device(bad.keys.address)
        assert device is not None
        strikes_after_each_batch.append(device.strikes)
        return prepare()

    monkeypatch.setattr(service, "prepare", prepare_and_count)
    assert len(service.flush()) == 2
    assert strikes_after_each_batch == [0, 1, 1]  # reported before the second batch


def test_over_http_bundles_go_in_a_signed_upload_held_until_the_batch_commits(
    world: World,
) -> None:
    """On a node, the gateway stores its bundles with a bulk upload signed by its key:
    they count against its quota until the batch naming them commits. A gateway the
    chain does not know is refused, and its readings stay pending."""
    node = FakeNode(world.chain)
    held: list[int] = []
    submit = node.submit

    async def watching(tx: Tx, client: str | None = None) -> bool:
        # what the gateway holds when its batch arrives
        held.append(node.bodies.usage(world.gateway_keys.address_text))
        return await submit(tx, client)

    node.submit = watching  # type: ignore[method-assign]
    with HttpChain("http://node", transport=SyncASGITransport(create_api(node))) as http:
        service = GatewayService(
            world.gateway_keys,
            http,
            ReadingIndex(":memory:"),
            replace(GatewayConfig(), batch_max_readings=5, device_cache_ms=0, readers_cache_ms=0),
            clock=world.clock,
        )
        sim = world.device()
        for reading in sim.stream(5):
            service.submit(reading)
        (batch_id,) = service.flush()
        batch = world.chain.batch(batch_id)
        assert batch is not None
        (bundle,) = batch.bundles
        assert held == [len(world.chain.blobs.get(bundle.cid))]
        assert node.bodies.is_named(bundle.cid)
        assert node.bodies.usage(world.gateway_keys.address_text) == 0
        stranger = GatewayService(
            AccountKeys.generate(), http, ReadingIndex(":memory:"), GatewayConfig()
        )
        reading = sim.next_reading()
        stranger.submit(reading)
        with pytest.raises(NodeError) as refused:
            stranger.flush()
        assert refused.value.code == "not_a_gateway" and refused.value.status == 403
        assert stranger.status(reading.reading_id).state == "pending"
