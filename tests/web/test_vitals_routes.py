"""The vitals sharing page over HTTP: the patient finds a doctor by name, shares their
vitals and the doctor's chart then draws the readings committed since; the patient
stops sharing. A form without its token, an account that is no patient and a share
the chain refuses come back refused, the chain's reason on the page."""

from __future__ import annotations

import httpx

from medchain.client import HttpChain
from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from tests.api.harness import RESEARCH
from tests.web.conftest import DOCTOR_NAME, RunningApp, Ward, app_of
from tests.web.wearer import hours_ago, send_readings, wear_device


def _post(client: httpx.Client, app: RunningApp, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={CSRF_FIELD: app.keys.csrf, **form}, headers={"origin": app.url})


def _readers(ward: Ward) -> tuple[bytes, ...]:
    return ward.client(ward.patient).vitals_readers_of()


def test_the_patient_shares_with_a_doctor_by_name_who_then_sees_the_chart(ward: Ward) -> None:
    doctor = format_address(ward.doctor.address)
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        vitals = client.get("/vitals").text
        found = client.get("/vitals/readers", params={"q": "Quill"}).text
        forged = client.post("/vitals/readers/add", data={"reader": doctor})
        shared = _post(client, app, "/vitals/readers/add", reader=doctor)
        listed = client.get(shared.headers["location"]).text
    assert '<a href="/vitals/readers">Who may read my vitals</a>' in vitals
    assert f"Share my vitals with {DOCTOR_NAME}" in found and f'value="{doctor}"' in found
    assert forged.status_code == 403
    assert shared.status_code == 303 and shared.headers["location"] == "/vitals/readers?done=shared"
    assert 'role="status"' in listed and f"Stop sharing with {DOCTOR_NAME}" in listed
    assert _readers(ward) == (ward.doctor.address,)
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        send_readings(chain, wear_device(ward, chain), 5, hours_ago(1))
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        chart = client.get(f"/patients/{patient}/vitals").text
    assert "5 readings from" in chart and '<polyline class="mean"' in chart


def test_the_patient_stops_sharing(ward: Ward) -> None:
    ward.client(ward.patient).share_vitals(ward.doctor.address)
    doctor = format_address(ward.doctor.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        forged = client.post("/vitals/readers/remove", data={"reader": doctor})
        still = _readers(ward)
        stopped = _post(client, app, "/vitals/readers/remove", reader=doctor)
        listed = client.get(stopped.headers["location"]).text
    assert forged.status_code == 403 and still == (ward.doctor.address,)
    assert stopped.status_code == 303 and _readers(ward) == ()
    assert "Stopped:" in listed and "Nobody but you and your guardians." in listed


def test_a_share_the_chain_refuses_comes_back_with_its_reason(ward: Ward) -> None:
    ward.client(ward.patient).share_vitals(ward.doctor.address)
    doctor, stranger = format_address(ward.doctor.address), format_address(ward.stranger.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        twice = _post(client, app, "/vitals/readers/add", reader=doctor)
        not_one = _post(client, app, "/vitals/readers/remove", reader=stranger)
    assert twice.status_code == 400 and "already reads your vitals" in twice.text
    assert 'role="alert"' in twice.text and "Traceback" not in twice.text
    assert not_one.status_code == 400 and "does not read the vitals" in not_one.text
    assert _readers(ward) == (ward.doctor.address,)


def test_an_account_that_is_no_patient_may_not_share(ward: Ward) -> None:
    doctor = format_address(ward.doctor.address)
    with app_of(ward, RESEARCH.account) as app, app.browser() as client:
        answer = _post(client, app, "/vitals/readers/add", reader=doctor)
    assert answer.status_code == 403 and "this needs a patient" in answer.text
    assert ward.client(ward.doctor).vitals_readers_of(RESEARCH.account.address) == ()


def test_a_doctor_not_shared_with_sees_no_chart(ward: Ward) -> None:
    patient = format_address(ward.patient.address)
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        send_readings(chain, wear_device(ward, chain), 3, hours_ago(1))
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        page = client.get(f"/patients/{patient}/vitals").text
    assert "The patient has not shared their vitals with you." in page
    assert "<polyline" not in page
