"""A person's records for the pages: decrypted a page at a time, who reads each, and
the directory of credentialed clinicians and organisations."""

from __future__ import annotations

from medchain.app import ProxyRelation, ProxyScope
from medchain.client import add_proxy
from medchain.crypto import format_address
from medchain.web._records import directory, name_of, patients, record_page, timeline
from tests.api.harness import HOSPITAL
from tests.web.conftest import DOCTOR_NAME, SECOND_DOCTOR_NAME, Ward

NOW_MS = 1_800_000_000_000


def _observation(value: int) -> dict[str, object]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "Heart rate"},
        "valueQuantity": {"value": value, "unit": "/min"},
    }


def test_the_timeline_is_newest_first_and_paged(ward: Ward) -> None:
    written = [ward.doctor_writes(_observation(60 + i)) for i in range(3)]
    patient = ward.client(ward.patient)
    first = timeline(patient, ward.patient.address, 1, page_size=2)
    second = timeline(patient, ward.patient.address, 2, page_size=2)
    beyond = timeline(patient, ward.patient.address, 9, page_size=2)
    assert (first.total, first.pages) == (3, 2)
    assert [e.record_id for e in first.entries + second.entries] == [
        r.hex() for r in reversed(written)
    ]
    assert beyond.page == 2
    values = [dict(e.view.lines)["Value"] for e in first.entries if e.view]
    assert values == ["62 /min", "61 /min"]
    assert first.entries[0].author == DOCTOR_NAME


def test_a_record_not_shared_is_listed_without_its_content(ward: Ward) -> None:
    ward.doctor_writes()
    stranger = timeline(ward.client(ward.stranger), ward.patient.address, 1)
    (entry,) = stranger.entries
    assert entry.view is None
    assert entry.note == "not shared with you"


def test_a_record_page_lists_its_readers_and_who_manages_it(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    mine = record_page(ward.client(ward.patient), record_id, NOW_MS)
    authors = record_page(ward.client(ward.doctor), record_id, NOW_MS)
    strangers = record_page(ward.client(ward.stranger), record_id, NOW_MS)
    assert mine.manages and mine.owned and not authors.manages and not authors.owned
    assert [(r.name, r.what) for r in mine.readers] == [(DOCTOR_NAME, f"doctor, {HOSPITAL.org_id}")]
    assert (mine.patient_name, authors.patient_name) == (
        "you",
        format_address(ward.patient.address),
    )
    assert mine.view is not None and mine.raw is not None
    assert mine.raw["resourceType"] == "Condition"
    assert strangers.raw is None and strangers.view is None
    assert strangers.note == "This record is not shared with you."


def test_a_grant_proxy_manages_the_record_and_others_do_not(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    patient = ward.client(ward.patient)
    scopes = {
        ward.second: (ProxyScope.GRANT, ProxyScope.READ),
        ward.stranger: (ProxyScope.READ, ProxyScope.WRITE, ProxyScope.DEVICES),
    }
    for proxy, held in scopes.items():
        add_proxy(patient, proxy.address, ProxyRelation.CARER, held, NOW_MS + 60_000)
    granting = record_page(ward.client(ward.second), record_id, NOW_MS)
    reading = record_page(ward.client(ward.stranger), record_id, NOW_MS)
    expired = record_page(ward.client(ward.second), record_id, NOW_MS + 60_000)
    assert granting.manages and not granting.owned
    assert not reading.manages and reading.raw is not None
    assert not expired.manages


def test_the_directory_finds_clinicians_and_organisations_by_name(ward: Ward) -> None:
    client = ward.client(ward.patient)
    ben = directory(client, "ben")
    everyone = directory(client, "")
    hospital = directory(client, HOSPITAL.org_id)
    assert [(p.name, p.address) for p in ben] == [
        (SECOND_DOCTOR_NAME, format_address(ward.second.address))
    ]
    assert ben[0].what.startswith("doctor, ")
    assert {DOCTOR_NAME, SECOND_DOCTOR_NAME} <= {p.name for p in everyone}
    assert format_address(HOSPITAL.account.address) in {p.address for p in hospital}
    assert directory(client, "nobody by this name") == []


def test_names_come_from_credentials_and_patients_by_address(ward: Ward) -> None:
    doctor = ward.client(ward.doctor)
    patient_text = format_address(ward.patient.address)
    assert name_of(doctor, ward.second.address) == SECOND_DOCTOR_NAME
    assert name_of(doctor, ward.patient.address) == patient_text
    found = patients(doctor, patient_text[-10:])
    assert [p.address for p in found] == [patient_text]
