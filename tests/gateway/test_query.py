"""Reading vitals back (medchain.gateway.read_vitals) on an in-process LocalChain, and over
HTTP: the patient, a guardian and a reader the patient shares their vitals with list and
decrypt a device's readings over a range; a reader shared later opens only what was
committed since; anyone else gets a clear error; a bundle that does not match the chain
is caught."""

from __future__ import annotations

import pytest

from medchain.api import create_api
from medchain.app import MS_PER_DAY, Bundle, InvalidArgument, Role
from medchain.client import HttpChain, MedchainClient, NotAReader
from medchain.crypto import AccountKeys, format_address, sha256
from medchain.gateway import (
    Batch,
    BatchEntry,
    DeviceKind,
    SignedReading,
    SimulatedDevice,
    VitalKind,
    VitalReading,
    VitalsCorrupted,
    read_vitals,
)
from medchain.gateway._index import ReadingIndex
from medchain.gateway._service import GatewayService, seal_bundle
from tests.api.harness import FakeNode, SyncASGITransport, enlist
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)

MIDNIGHT = 19_845 * MS_PER_DAY  # 2024-05-02T00:00:00Z
MINUTE = 60_000


def _device(world: World, kind: DeviceKind, start_ms: int) -> SimulatedDevice:  # noqa: F811
    """A device of the patient reading every 10 minutes from `start_ms`."""
    sim = world.device(kind)
    sim.now_ms, sim.interval_ms = start_ms, 10 * MINUTE
    return sim


def _person(world: World, role: Role) -> MedchainClient:  # noqa: F811
    return enlist(MedchainClient(AccountKeys.generate(), world.chain), role, f"a {role.value}")


def _stream(service: GatewayService, *devices: SimulatedDevice, count: int) -> list[SignedReading]:
    sent = [d.next_reading() for _ in range(count) for d in devices]
    for reading in sent:
        service.submit(reading)
    service.flush()
    return sent


def _read(
    reader: MedchainClient,
    world: World,  # noqa: F811
    from_ms: int,
    to_ms: int,
    device: bytes | None = None,
) -> list[VitalReading]:
    return read_vitals(reader.keys, world.chain, world.patient.address, from_ms, to_ms, device)


def test_patient_guardian_and_shared_reader_read_a_device_over_a_range(
    world: World,  # noqa: F811
) -> None:
    doctor = _person(world, Role.DOCTOR)
    world.patient.share_vitals(doctor.address)
    service = world.service(ReadingIndex(":memory:"))
    oximeter = _device(world, DeviceKind.PULSE_OXIMETER, MIDNIGHT - 30 * MINUTE)
    band = _device(world, DeviceKind.HEART_RATE_BAND, MIDNIGHT - 30 * MINUTE)
    sent = _stream(service, oximeter, band, count=6)  # 23:30 to 00:20 UTC, 12 readings
    ox_ids = [r.reading_id for r in sent if r.reading.device == oximeter.keys.public_key]

    # the oximeter across midnight: 23:50, 00:00 and 00:10, both edges included
    edges = (MIDNIGHT - 10 * MINUTE, MIDNIGHT + 10 * MINUTE)
    found = _read(world.patient, world, *edges, oximeter.keys.address)
    assert [r.time_ms for r in found] == [MIDNIGHT - 10 * MINUTE, MIDNIGHT, MIDNIGHT + 10 * MINUTE]
    assert [r.reading_id for r in found] == ox_ids[2:5]
    for r in found:
        assert r.device == oximeter.keys.address and r.kind is VitalKind.OXYGEN_SATURATION
        assert (r.measurement, r.code, r.unit) == ("oxygen saturation", "59408-5", "%")
        assert 50 <= r.values[0] <= 100 and r.value_text == f"{r.values[0]:g}"
        status = service.status(r.reading_id).committed
        assert status is not None and status.batch_id == r.batch_id
    # the guardian reads the same, and so does the reader the patient shares with (over HTTP)
    assert _read(world.guardian, world, *edges, oximeter.keys.address) == found
    api = SyncASGITransport(create_api(FakeNode(world.chain)))
    with HttpChain("http://node", transport=api) as http:
        patient = world.patient.address
        assert read_vitals(doctor.keys, http, patient, *edges, oximeter.keys.address) == found
    # both devices, oldest first; the band's readings say heart rate
    everything = _read(doctor, world, MIDNIGHT - MS_PER_DAY, MIDNIGHT + MS_PER_DAY - 1)
    assert len(everything) == 12
    assert [r.time_ms for r in everything] == sorted(r.time_ms for r in everything)
    beats = [r for r in everything if r.device == band.keys.address]
    assert len(beats) == 6 and {r.kind for r in beats} == {VitalKind.HEART_RATE}
    assert {(r.code, r.unit) for r in beats} == {("8867-4", "/min")}
    first = MIDNIGHT - 30 * MINUTE
    assert [r.time_ms for r in _read(doctor, world, first, first, band.keys.address)] == [first]
    assert _read(doctor, world, MIDNIGHT + 21 * MINUTE, MIDNIGHT + MS_PER_DAY - 1) == []


def test_a_reader_shared_later_reads_only_what_is_committed_since(
    world: World,  # noqa: F811
) -> None:
    doctor = _person(world, Role.DOCTOR)
    service = world.service(ReadingIndex(":memory:"))
    sim = _device(world, DeviceKind.PULSE_OXIMETER, MIDNIGHT + 60 * MINUTE)
    before = _stream(service, sim, count=2)
    world.patient.share_vitals(doctor.address)
    after = _stream(service, sim, count=2)
    world.patient.unshare_vitals(doctor.address)
    unshared = _stream(service, sim, count=1)
    day = (MIDNIGHT, MIDNIGHT + MS_PER_DAY - 1)

    found = read_vitals(doctor.keys, world.chain, world.patient.address, *day)
    assert [r.reading_id for r in found] == [r.reading_id for r in after]
    assert found.unreadable == 2  # the batch before the share, and the one after unsharing
    everyone = _read(world.patient, world, *day)
    assert [r.reading_id for r in everyone] == [r.reading_id for r in before + after + unshared]
    with pytest.raises(NotAReader, match="share-vitals"):  # a range of older readings only
        _read(doctor, world, MIDNIGHT, before[-1].reading.timestamp_ms)


def test_an_unauthorised_reader_gets_a_clear_error(world: World) -> None:  # noqa: F811
    stranger = _person(world, Role.DOCTOR)
    service = world.service(ReadingIndex(":memory:"))
    _stream(service, _device(world, DeviceKind.THERMOMETER, MIDNIGHT), count=2)
    with pytest.raises(NotAReader) as refused:
        _read(stranger, world, MIDNIGHT, MIDNIGHT + MS_PER_DAY - 1)
    assert refused.value.message.startswith(
        f"{format_address(stranger.address)} is not a reader of these vitals; the patient "
        "shares them with `medchain devices share-vitals`"
    )
    assert _read(stranger, world, 0, MS_PER_DAY) == []  # nothing there: nothing to refuse
    with pytest.raises(InvalidArgument, match="at most 366"):
        _read(world.patient, world, MIDNIGHT, MIDNIGHT + 400 * MS_PER_DAY)


def _commit_forged(world: World, readings: list[SignedReading]) -> None:  # noqa: F811
    """Commit readings as the gateway would, but without its checks: a faulty gateway."""
    gateway = MedchainClient(world.gateway_keys, world.chain)
    batch = Batch(BatchEntry(format_address(world.patient.address), r) for r in readings)
    (bundle,) = batch.bundles
    patient = world.patient.address
    readers = gateway._reader_keys([patient])
    blob = seal_bundle(bundle, batch.root, readers)
    cid = world.chain.blobs.put(blob)
    gateway.commit_batch(
        batch.root,
        len(batch),
        [
            Bundle(
                patient,
                cid,
                sha256(blob),
                len(bundle.readings),
                bundle.time_from_ms,
                bundle.time_to_ms,
                bundle.devices,
            )
        ],
    )


def test_a_bundle_that_does_not_match_the_chain_is_caught(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sim = _device(world, DeviceKind.PULSE_OXIMETER, MIDNIGHT)
    good = sim.next_reading()
    forged = SignedReading(sim.next_reading().reading, bytes(64))  # not the device's signature
    _commit_forged(world, [good, forged])
    with pytest.raises(VitalsCorrupted, match="signature does not verify"):
        _read(world.patient, world, MIDNIGHT, MIDNIGHT + MS_PER_DAY - 1)
    monkeypatch.setattr(world.chain.blobs, "get", lambda cid: b"other bytes")
    with pytest.raises(VitalsCorrupted, match="does not match its hash on chain"):
        _read(world.patient, world, MIDNIGHT, MIDNIGHT + MS_PER_DAY - 1)
