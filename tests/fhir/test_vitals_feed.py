"""Gateway vitals readings searchable as Observations through AccountSource: the
patient and those they share vitals with see them; others do not."""

from __future__ import annotations

from medchain.app import Role
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys
from medchain.fhir._convert import patient_fhir_id
from medchain.fhir._search import parse_search
from medchain.fhir._source import AccountSource
from medchain.fhir._vitals import vital_observation_id
from medchain.gateway import SimulatedDevice
from medchain.gateway._index import ReadingIndex
from tests.api.harness import enlist
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)

HOUR_MS = 3_600_000


def _device_reading_now(world: World) -> SimulatedDevice:  # noqa: F811
    """A device whose readings are timed an hour before the chain's latest block."""
    device = world.device()
    device.now_ms = world.chain.latest_block().header.time_ms - HOUR_MS
    return device


def _observations(source: AccountSource, patient: bytes) -> list[dict[str, object]]:
    params = [("patient", patient_fhir_id(patient)), ("code", "59408-5"), ("_count", "100")]
    return [i.resource for i in source.search(parse_search("Observation", params, True)).items]


def test_readings_are_observations_for_the_patient_and_shared_readers(
    world: World,  # noqa: F811
) -> None:
    doctor = enlist(MedchainClient(AccountKeys.generate(), world.chain), Role.DOCTOR, "dr")
    stranger = enlist(MedchainClient(AccountKeys.generate(), world.chain), Role.DOCTOR, "x")
    world.patient.share_vitals(doctor.address)
    service = world.service(ReadingIndex(":memory:"))
    device = _device_reading_now(world)
    ids = [service.submit(device.next_reading()).reading_id for _ in range(4)]
    service.flush()
    patient_source = AccountSource(world.patient)
    found = _observations(patient_source, world.patient.address)
    assert sorted(str(o["id"]) for o in found) == sorted(vital_observation_id(i) for i in ids)
    assert all(o["meta"]["versionId"] == "1" for o in found)  # type: ignore[index]
    assert all("lastUpdated" in o["meta"] for o in found)  # type: ignore[operator]
    read = patient_source.read("Observation", vital_observation_id(ids[0]))
    assert read["subject"] == {"reference": f"Patient/{patient_fhir_id(world.patient.address)}"}
    assert len(_observations(AccountSource(doctor), world.patient.address)) == 4
    assert _observations(AccountSource(stranger), world.patient.address) == []


def test_later_readings_come_in_on_the_next_search(world: World) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    device = _device_reading_now(world)
    service.submit(device.next_reading())
    service.flush()
    source = AccountSource(world.patient)
    assert len(_observations(source, world.patient.address)) == 1
    service.submit(device.next_reading())
    service.flush()
    assert len(_observations(source, world.patient.address)) == 2
