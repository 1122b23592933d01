"""A clinician's pages over HTTP: their patients, the search of their index, and a new
version of a record, refused before sealing when it is not valid FHIR."""

from __future__ import annotations

import json

import httpx

from medchain.client import set_up_emergency_policy
from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from tests.web.conftest import RunningApp, Ward, app_of
from tests.web.test_break_glass import answer_all, penicillin_allergy


def _post(client: httpx.Client, app: RunningApp, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={CSRF_FIELD: app.keys.csrf, **form}, headers={"origin": app.url})


def test_vitals_added_in_the_app_list_the_patient_and_are_found(ward: Ward) -> None:
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        before = client.get("/").text
        added = _post(
            client, app, f"/patients/{patient}/observation", kind="heart-rate", value="72"
        )
        home = client.get("/").text
        found = client.get("/search", params={"q": "heart rate"}).text
        nothing = client.get("/search", params={"q": "asthma"}).text
    assert added.status_code == 303
    assert "None yet." in before
    assert f'<a href="/patients/{patient}">' in home
    assert "you wrote records for them" in home
    assert "1 found" in found and "72 /min" in found
    assert "0 found" in nothing


def test_a_new_version_keeps_the_readers_and_a_bad_one_is_refused(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    path = f"/records/{record_id.hex()}"
    readers = ward.client(ward.patient).record(record_id).readers
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        assert 'href="' + path + '/update"' in client.get(path).text
        form = client.get(f"{path}/update").text
        assert "Type 2 diabetes mellitus" in form
        current = ward.client(ward.doctor).read_record(record_id)
        edited = {**current, "code": {"text": "Type 2 diabetes, controlled"}}
        bad = _post(client, app, f"{path}/update", resource='{"resourceType": "Patient"}')
        good = _post(client, app, f"{path}/update", resource=json.dumps(edited))
        forged = client.post(f"{path}/update", data={"resource": json.dumps(edited)})
    assert bad.status_code == 400 and "keeps its type" in bad.text
    assert "{&#34;resourceType&#34;: &#34;Patient&#34;}" in bad.text  # kept in the form
    assert good.status_code == 303 and good.headers["location"] == path
    assert forged.status_code == 403
    record = ward.client(ward.patient).record(record_id)
    assert record.version_count == 2
    assert record.readers == readers
    assert (
        ward.client(ward.patient).read_record(record_id)["code"]["text"] == edited["code"]["text"]
    )


def test_a_patient_has_no_search_or_update(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    with app_of(ward, ward.patient) as app, app.browser() as client:
        assert client.get("/search").status_code == 404
        assert client.get(f"/records/{record_id.hex()}/update").status_code == 404
        assert "Write a new version" not in client.get(f"/records/{record_id.hex()}").text


def test_break_glass_is_requested_and_its_set_shown_once_answered(ward: Ward) -> None:
    patient_client = ward.client(ward.patient)
    patient_client.put_record(ward.patient.address, penicillin_allergy())
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        off = client.get(f"/patients/{patient}/emergency").text
        set_up_emergency_policy(patient_client)
        assert (
            'href="/patients/' + patient + '/emergency"' in client.get(f"/patients/{patient}").text
        )
        empty = _post(client, app, f"/patients/{patient}/emergency", reason=" ")
        opened = _post(client, app, f"/patients/{patient}/emergency", reason="unconscious")
        waiting = client.get(opened.headers["location"]).text
        answer_all(ward)
        answered = client.get(opened.headers["location"]).text
        listed = client.get(f"/patients/{patient}/emergency").text
        wrong = client.get("/emergency/zz")
    assert "break-glass is not available" in off
    assert empty.status_code == 400 and "give the reason" in empty.text
    assert opened.status_code == 303
    assert "0 of the 2 needed" in waiting and "Penicillin" not in waiting
    assert "2 of the 2 needed" in answered and "Penicillin" in answered
    assert f'<a href="{opened.headers["location"]}">' in listed
    assert wrong.status_code == 400 and "not a request id" in wrong.text
