"""Reading vitals back (medchain.gateway.read_vitals) on an in-process LocalChain, and over
HTTP: the patient, a guardian and a reader the patient shares their vitals with list and
decrypt a device's readings over a range; a reader shared later opens only what was
committed since; anyone else gets a clear error; a bundle that does not match the chain
is caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from medchain.api import create_api
from medchain.app import MS_PER_DAY, Bundle, InvalidArgument, Role
from medchain.client import HttpChain, MedchainClient, NotAReader
from medchain.crypto import AccountKeys, format_address, sha256
from medchain.gateway import (
    Batch,
    BatchEntry,
    CheckedBundles,
    DeviceKind,
    SignedReading,
    SimulatedDevice,
    VitalKind,
    VitalReading,
    VitalsCorrupted,
    read_vitals,
)
from medchain.gateway import _query as query_module
from medchain.gateway._index import ReadingIndex
from medchain.gateway._service import GatewayService, seal_bundle
from medchain.offchain import BlobCorrupted, LocalBlobStore
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


def _two_days(world: World) -> tuple[GatewayService, SimulatedDevice, SimulatedDevice]:  # noqa: F811
    """An oximeter and a band of the patient from 22:30 the day before, 30 readings each
    every 10 minutes: 5 batches of 12, the second cut in two at midnight."""
    service = world.service(ReadingIndex(":memory:"), batch_max_readings=12, rate_burst=100)
    oximeter = _device(world, DeviceKind.PULSE_OXIMETER, MIDNIGHT - 90 * MINUTE)
    band = _device(world, DeviceKind.HEART_RATE_BAND, MIDNIGHT - 90 * MINUTE)
    _stream(service, oximeter, band, count=30)
    return service, oximeter, band


def test_bundles_checked_before_give_what_a_full_check_gives(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, oximeter, _ = _two_days(world)
    patient, keys, chain = world.patient.address, world.patient.keys, world.chain
    checked = CheckedBundles()
    ranges = [
        ((MIDNIGHT - MS_PER_DAY, MIDNIGHT + MS_PER_DAY - 1), None),  # everything
        ((MIDNIGHT - 35 * MINUTE, MIDNIGHT + 55 * MINUTE), None),  # parts of bundles
        ((MIDNIGHT - 35 * MINUTE, MIDNIGHT + 55 * MINUTE), oximeter.keys.address),
    ]
    # a narrow first view checks and keeps whole bundles: wider views are answered the same
    for (from_ms, to_ms), device in reversed(ranges):
        full = read_vitals(keys, chain, patient, from_ms, to_ms, device)
        assert read_vitals(keys, chain, patient, from_ms, to_ms, device, checked=checked) == full
    entries = chain.vitals(patient, MIDNIGHT - MS_PER_DAY, MIDNIGHT + MS_PER_DAY - 1)
    assert len(checked) == len(entries) and checked.readings == 60
    # viewed again, nothing is checked again: the readings come from what was kept
    fulls = [read_vitals(keys, chain, patient, *span, device) for span, device in ranges]
    monkeypatch.setattr(query_module, "verify_reading", _never)
    monkeypatch.setattr(query_module, "open_bundle", _never)
    for ((from_ms, to_ms), device), full in zip(ranges, fulls, strict=True):
        assert read_vitals(keys, chain, patient, from_ms, to_ms, device, checked=checked) == full
    assert [len(full) for full in fulls] == [60, 18, 9]


def _never(*args: object) -> None:
    raise AssertionError("a bundle kept as checked was opened or checked again")


def test_a_bundle_altered_in_the_store_is_caught_after_it_was_checked(
    world: World,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _two_days(world)
    day = (MIDNIGHT, MIDNIGHT + MS_PER_DAY - 1)
    entries = world.chain.vitals(world.patient.address, *day)
    on_disk = LocalBlobStore(tmp_path)
    for entry in entries:
        on_disk.put(world.chain.blobs.get(entry.cid))
    monkeypatch.setattr(world.chain, "blobs", on_disk)
    checked = CheckedBundles()

    def view() -> list[VitalReading]:
        patient = world.patient.address
        return read_vitals(world.patient.keys, world.chain, patient, *day, checked=checked)

    assert len(view()) == 42 and len(checked) == len(entries)
    # a byte of a stored bundle flipped on disk: the store's own check refuses it
    path = on_disk.path_for(entries[-1].cid)
    altered = bytearray(path.read_bytes())
    altered[len(altered) // 2] ^= 1
    path.write_bytes(bytes(altered))
    with pytest.raises(BlobCorrupted):
        view()
    # a store that answers other bytes than the chain names (one not checking its CIDs)
    other = world.chain.blobs.get(entries[0].cid)
    monkeypatch.setattr(on_disk, "get", lambda cid: other)
    with pytest.raises(VitalsCorrupted, match="does not match its hash on chain"):
        view()


def test_what_one_reader_checked_opens_nothing_for_another(world: World) -> None:  # noqa: F811
    doctor = _person(world, Role.DOCTOR)
    world.patient.share_vitals(doctor.address)
    _two_days(world)
    stranger = _person(world, Role.DOCTOR)
    day = (MIDNIGHT, MIDNIGHT + MS_PER_DAY - 1)
    checked = CheckedBundles()
    patient = world.patient.address
    assert len(read_vitals(world.patient.keys, world.chain, patient, *day, checked=checked)) == 42
    # on an in-process chain the bundle's seal decides: the stranger's key opens none
    with pytest.raises(NotAReader, match="is not a reader of these vitals"):
        read_vitals(stranger.keys, world.chain, patient, *day, checked=checked)
    # over HTTP the node asks again on every read who may see the patient's vitals
    api = SyncASGITransport(create_api(FakeNode(world.chain)))
    with HttpChain("http://node", transport=api) as http:
        assert len(read_vitals(doctor.keys, http, patient, *day, checked=checked)) == 42
        world.patient.unshare_vitals(doctor.address)
        with pytest.raises(NotAReader):
            read_vitals(doctor.keys, http, patient, *day, checked=checked)
        with pytest.raises(NotAReader):
            read_vitals(stranger.keys, http, patient, *day, checked=checked)


def test_the_bundles_kept_are_bounded_by_their_readings(world: World) -> None:  # noqa: F811
    _two_days(world)
    keys, patient = world.patient.keys, world.patient.address
    everything = (MIDNIGHT - MS_PER_DAY, MIDNIGHT + MS_PER_DAY - 1)
    sizes = [e.count for e in world.chain.vitals(patient, *everything)]
    assert sorted(sizes) == [6, 6, 12, 12, 12, 12]
    checked = CheckedBundles(max_readings=20)
    full = read_vitals(keys, world.chain, patient, *everything)
    assert read_vitals(keys, world.chain, patient, *everything, checked=checked) == full
    assert checked.readings <= 20 and len(checked) < len(sizes)
    assert read_vitals(keys, world.chain, patient, *everything, checked=checked) == full
    assert checked.readings <= 20
    tiny = CheckedBundles(max_readings=3)  # smaller than any bundle: checked, never kept
    assert read_vitals(keys, world.chain, patient, *everything, checked=tiny) == full
    assert (len(tiny), tiny.readings) == (0, 0)
    with pytest.raises(ValueError, match="at least one reading"):
        CheckedBundles(max_readings=0)
