"""The app of a key: refused for an account the chain does not know; a clinician's
pages for an account with an active credential, a patient's otherwise."""

from __future__ import annotations

import pytest

from medchain.crypto import AccountKeys
from medchain.web import NotRegistered, Secrets, person_app
from tests.web.conftest import DOCTOR_NAME, PATIENT_NAME, Ward, app_of, node_chain


def test_an_unregistered_key_is_refused(ward: Ward) -> None:
    with pytest.raises(NotRegistered, match="medchain register"):
        person_app(AccountKeys.generate(), node_chain(ward), 8700, Secrets())


def test_the_pages_follow_the_account(ward: Ward) -> None:
    with app_of(ward, ward.patient) as mine, mine.browser() as client:
        patient_home = client.get("/").text
    with app_of(ward, ward.doctor) as theirs, theirs.browser() as client:
        doctor_home = client.get("/").text
    assert f'{PATIENT_NAME} <span class="muted">(patient)</span>' in patient_home
    assert "<h1>My records</h1>" in patient_home
    assert f'{DOCTOR_NAME} <span class="muted">(clinician)</span>' in doctor_home
    assert "<h1>Patients</h1>" in doctor_home
