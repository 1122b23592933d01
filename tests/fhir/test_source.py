"""AccountSource on an in-memory chain: which records an account sees, how the index
keeps in step with the chain, and how writes and refusals come out."""

from __future__ import annotations

from typing import Any

import pytest

from medchain.api import create_api
from medchain.app import AuditAction, Role
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys
from medchain.fhir._convert import instant_of, patient_fhir_id
from medchain.fhir._outcome import FhirError
from medchain.fhir._search import parse_search
from medchain.fhir._source import AccountSource
from medchain.node import LocalChain
from tests.api.harness import FakeNode, SyncASGITransport, enlist, make_chain
from tests.fhir.harness import observation


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


@pytest.fixture
def people(chain: LocalChain) -> dict[str, MedchainClient]:
    roles = {"patient": Role.PATIENT, "doctor": Role.DOCTOR, "other": Role.DOCTOR}
    return {
        name: enlist(MedchainClient(AccountKeys.generate(), chain), role, name)
        for name, role in roles.items()
    }


def _ids(source: AccountSource, resource_type: str, **params: str) -> list[str]:
    query = parse_search(resource_type, list(params.items()), strict=True)
    return [item.id for item in source.search(query).items]


class _Counting:
    """Counts the versions an SDK client decrypts."""

    def __init__(self, client: MedchainClient) -> None:
        self.opened = 0
        inner = client.read_record

        def read_record(record_id: bytes, version: int | None = None) -> dict[str, Any]:
            self.opened += 1
            return inner(record_id, version)

        client.read_record = read_record  # type: ignore[method-assign]


def test_patient_sees_own_records_with_chain_version_and_time(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient = people["patient"]
    record_id = people["doctor"].put_record(patient.address, observation("x"))
    source = AccountSource(patient)
    assert _ids(source, "Observation") == [record_id.hex()]
    resource = source.read("Observation", record_id.hex())
    created = next(e for e in chain.audit(record_id) if e.action is AuditAction.CREATED)
    assert resource["meta"] == {"versionId": "1", "lastUpdated": instant_of(created.time_ms)}
    assert resource["subject"] == {"reference": f"Patient/{patient_fhir_id(patient.address)}"}


def test_only_new_versions_are_decrypted_when_the_chain_moved(
    people: dict[str, MedchainClient],
) -> None:
    patient, doctor = people["patient"], people["doctor"]
    first = doctor.put_record(patient.address, observation("x", value=1))
    doctor.put_record(patient.address, observation("x", value=2))
    counting = _Counting(patient)
    source = AccountSource(patient)
    assert len(_ids(source, "Observation")) == 2
    assert counting.opened == 2
    _ids(source, "Observation")  # the chain did not move: nothing opened
    assert counting.opened == 2
    doctor.add_version(first, observation("x", value=3))
    assert source.read("Observation", first.hex())["valueQuantity"]["value"] == 3
    assert counting.opened == 3


def test_clinician_syncs_a_patient_on_the_first_search_naming_them(
    people: dict[str, MedchainClient],
) -> None:
    patient, doctor, other = people["patient"], people["doctor"], people["other"]
    mine = doctor.put_record(patient.address, observation("x"))
    other.put_record(patient.address, observation("x"))  # doctor is no reader of this one
    source = AccountSource(doctor)
    assert _ids(source, "Observation") == []
    named = _ids(source, "Observation", patient=patient_fhir_id(patient.address))
    assert named == [mine.hex()]


def test_stranger_gets_403_and_revoked_reader_loses_the_record(
    people: dict[str, MedchainClient],
) -> None:
    patient, doctor, other = people["patient"], people["doctor"], people["other"]
    record_id = patient.put_record(patient.address, observation("x"), [doctor.address])
    with pytest.raises(FhirError) as caught:
        AccountSource(other).read("Observation", record_id.hex())
    assert caught.value.status == 403
    source = AccountSource(doctor)
    assert source.read("Observation", record_id.hex())["id"] == record_id.hex()
    patient.revoke(record_id, doctor.address)
    assert _ids(source, "Observation", patient=patient_fhir_id(patient.address)) == []


def test_erased_record_leaves_the_index_and_reads_as_410(
    people: dict[str, MedchainClient],
) -> None:
    patient = people["patient"]
    record_id = people["doctor"].put_record(patient.address, observation("x"))
    source = AccountSource(patient)
    assert _ids(source, "Observation") == [record_id.hex()]
    patient.erase(record_id)
    assert _ids(source, "Observation") == []
    with pytest.raises(FhirError) as caught:
        source.read("Observation", record_id.hex())
    assert caught.value.status == 410


def test_create_writes_for_the_subject_and_update_checks_if_match(
    people: dict[str, MedchainClient],
) -> None:
    patient, doctor = people["patient"], people["doctor"]
    source = AccountSource(doctor)
    created = source.create("Observation", observation(patient_fhir_id(patient.address)))
    record_id = bytes.fromhex(created["id"])
    assert patient.read_record(record_id)["status"] == "final"
    updated = source.update("Observation", created["id"], {**created, "status": "amended"}, 1)
    assert updated["meta"]["versionId"] == "2"
    with pytest.raises(FhirError) as caught:
        source.update("Observation", created["id"], created, 1)
    assert caught.value.status == 412
    assert [v["meta"]["versionId"] for v in source.history("Observation", created["id"])] == [
        "2",
        "1",
    ]
    assert source.vread("Observation", created["id"], 1)["status"] == "final"


@pytest.mark.parametrize(
    ("resource", "status", "expression"),
    [
        (observation("pat-0001"), 400, ["Observation.subject"]),
        ({"resourceType": "Patient"}, 400, ["resourceType"]),
    ],
)
def test_create_refuses_what_it_cannot_write(
    people: dict[str, MedchainClient],
    resource: dict[str, Any],
    status: int,
    expression: list[str],
) -> None:
    with pytest.raises(FhirError) as caught:
        AccountSource(people["doctor"]).create("Observation", resource)
    assert caught.value.status == status
    assert caught.value.outcome()["issue"][0]["expression"] == expression


def test_profile_is_the_patients_own_and_forbidden_to_others(
    people: dict[str, MedchainClient],
) -> None:
    patient = people["patient"]
    text = patient_fhir_id(patient.address)
    assert AccountSource(patient).read("Patient", text)["name"] == [{"text": "patient"}]
    with pytest.raises(FhirError) as caught:
        AccountSource(people["doctor"]).read("Patient", text)
    assert caught.value.status == 403


def test_patients_consents_are_consent_resources(people: dict[str, MedchainClient]) -> None:
    patient = people["patient"]
    grant = patient.grant_consent(people["doctor"].address, resource_types=["Observation"])
    source = AccountSource(patient)
    found = _ids(source, "Consent")
    assert found == [f"medchain-consent-{grant.consent.consent_id}"]
    assert source.read("Consent", found[0])["status"] == "active"


def test_over_a_nodes_api_as_with_node_url(
    chain: LocalChain, people: dict[str, MedchainClient]
) -> None:
    patient, doctor = people["patient"], people["doctor"]
    record_id = doctor.put_record(patient.address, observation("x"))
    api = SyncASGITransport(create_api(FakeNode(chain)))
    with HttpChain("http://node", transport=api) as http:
        source = AccountSource(MedchainClient(doctor.keys, http))
        named = _ids(source, "Observation", patient=patient_fhir_id(patient.address))
        assert named == [record_id.hex()]
        resource = source.read("Observation", record_id.hex())
        assert resource["meta"]["lastUpdated"] == instant_of(
            next(e.time_ms for e in chain.audit(record_id) if e.action is AuditAction.CREATED)
        )
        stranger = AccountSource(MedchainClient(people["other"].keys, http))
        with pytest.raises(FhirError) as caught:
            stranger.read("Observation", record_id.hex())
        assert caught.value.status == 403


def test_create_seals_for_the_readers_the_patients_consents_require(
    people: dict[str, MedchainClient],
) -> None:
    patient, doctor, other = people["patient"], people["doctor"], people["other"]
    patient.grant_consent(other.address, resource_types=["Observation"])
    created = AccountSource(doctor).create(
        "Observation", observation(patient_fhir_id(patient.address))
    )
    assert AccountSource(other).read("Observation", created["id"])["id"] == created["id"]
