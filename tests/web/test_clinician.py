"""A clinician's reads and checks (medchain.web._clinician): their patients as the chain
lets them find them, search over their own index, a new version checked first."""

from __future__ import annotations

import json

import pytest

from medchain.app import ProxyRelation, ProxyScope
from medchain.client import add_proxy
from medchain.crypto import format_address
from medchain.web._clinician import (
    AUTHORED,
    InvalidUpdate,
    keywords_for,
    my_patients,
    new_version,
    search_records,
)
from tests.web.conftest import EXAMPLES, PATIENT_NAME, Ward


def _condition() -> dict[str, object]:
    return dict(json.loads((EXAMPLES / "condition.json").read_text()))


def _writes_through_the_app(ward: Ward) -> bytes:
    resource = _condition()
    doctor = ward.client(ward.doctor)
    return doctor.put_record(ward.patient.address, resource, keywords=keywords_for(resource))


def test_keywords_are_the_marker_the_type_and_the_code() -> None:
    assert keywords_for(_condition()) == [AUTHORED, "Condition", "Type 2 diabetes mellitus"]
    assert keywords_for({"resourceType": "Patient"}) == [AUTHORED, "Patient"]


def test_my_patients_are_those_i_wrote_for_and_those_i_act_for(ward: Ward) -> None:
    assert my_patients(ward.client(ward.doctor)) == []
    ward.doctor_writes()  # not through the app: nothing on chain leads back to it
    assert my_patients(ward.client(ward.doctor)) == []
    _writes_through_the_app(ward)
    stranger = ward.client(ward.stranger)
    add_proxy(stranger, ward.doctor.address, ProxyRelation.CARER, [ProxyScope.READ])
    found = my_patients(ward.client(ward.doctor))
    assert {(p.address, p.what) for p in found} == {
        (format_address(ward.patient.address), "you wrote records for them"),
        (format_address(ward.stranger.address), "you are their proxy (carer)"),
    }
    assert [p.name for p in found] == sorted(p.name for p in found)
    assert PATIENT_NAME not in [p.name for p in found]  # a patient's name is sealed


def test_search_opens_what_the_index_holds(ward: Ward) -> None:
    record_id = _writes_through_the_app(ward)
    doctor = ward.client(ward.doctor)
    answer = search_records(doctor, "  type 2 DIABETES mellitus ")
    assert [f.record_id for f in answer.found] == [record_id.hex()]
    assert answer.found[0].view.kind == "Condition"
    assert search_records(doctor, "asthma").found == ()
    ward.client(ward.patient).revoke(record_id, ward.doctor.address)
    ward.client(ward.patient).add_version(record_id, _condition())
    after = search_records(ward.client(ward.doctor), "Condition")
    assert (after.found, after.skipped) == ((), 1)


def test_a_new_version_must_be_json_fhir_and_the_same_type() -> None:
    current = _condition()
    edited = {**current, "code": {"text": "Type 2 diabetes, controlled"}}
    assert new_version(current, json.dumps(edited))["code"]["text"] == "Type 2 diabetes, controlled"
    with pytest.raises(InvalidUpdate, match="not JSON"):
        new_version(current, "{")
    with pytest.raises(InvalidUpdate, match="keeps its type"):
        new_version(current, json.dumps({"resourceType": "Patient"}))
    with pytest.raises(InvalidUpdate):
        new_version(current, json.dumps({**current, "clinicalStatus": 7}))
    with pytest.raises(InvalidUpdate, match="at most"):
        new_version(current, " " * (65 * 1024) + "{}")
