"""Emergency access as a clinician's pages read it (medchain.web._break_glass): whether
break-glass is on, their requests, and a request's set once enough organisations answer."""

from __future__ import annotations

import json

import pytest

from medchain.client import (
    EmergencyNotOpen,
    answer_pending,
    open_emergency,
    set_up_emergency_policy,
)
from medchain.web._break_glass import patient_emergency, request_state
from tests.api.harness import HOSPITAL, RESEARCH
from tests.web.conftest import EXAMPLES, Ward


def penicillin_allergy() -> dict[str, object]:
    return {
        "resourceType": "AllergyIntolerance",
        "patient": {"reference": "Patient/p1"},
        "code": {"text": "Penicillin"},
        "criticality": "high",
    }


def answer_all(ward: Ward) -> None:
    """Both founding organisations (the whole consortium) answer what is pending."""
    for org in (HOSPITAL, RESEARCH):
        answer_pending(ward.client(org.account))


def test_no_policy_means_no_break_glass(ward: Ward) -> None:
    state = patient_emergency(ward.client(ward.doctor), ward.patient.address)
    assert (state.available, state.requests) == (False, ())


def test_a_request_shows_its_answers_then_the_set(ward: Ward) -> None:
    patient = ward.client(ward.patient)
    allergy = patient.put_record(ward.patient.address, penicillin_allergy())
    patient.put_record(ward.patient.address, json.loads((EXAMPLES / "patient.json").read_text()))
    set_up_emergency_policy(patient)
    doctor = ward.client(ward.doctor)
    assert patient_emergency(doctor, ward.patient.address).available
    request_id = open_emergency(doctor, ward.patient.address, "unconscious in A&E")
    waiting = request_state(doctor, request_id)
    assert (waiting.records, waiting.answered, waiting.threshold) == (None, (), 2)
    assert "0 of the 2" in waiting.note
    answer_all(ward)
    opened = request_state(ward.client(ward.doctor), request_id)
    assert opened.answered == tuple(sorted((HOSPITAL.org_id, RESEARCH.org_id)))
    assert opened.records is not None
    assert [(r.record_id, r.view.title) for r in opened.records] == [(allergy.hex(), "Penicillin")]
    (listed,) = patient_emergency(ward.client(ward.doctor), ward.patient.address).requests
    assert (listed.request_id, listed.reason) == (request_id.hex(), "unconscious in A&E")
    assert patient_emergency(ward.client(ward.second), ward.patient.address).requests == ()
    with pytest.raises(EmergencyNotOpen, match="opened by this account"):
        request_state(ward.client(ward.second), request_id)
