"""Adding a record over HTTP: a doctor adds a condition, an allergy, a medication and
an uploaded FHIR resource through the forms and the patient's timeline renders each;
a wrong form, a JSON that is not FHIR or an oversize upload is refused with the reason
and nothing is sealed; a patient adds to their own chart and to no one else's."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from medchain.web._clinician import MAX_RECORD_BYTES
from medchain.web._record_forms import UPLOAD_FORM_BYTES
from tests.web.conftest import RunningApp, Ward, app_of

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONDITION = {"code": "44054006", "text": "", "status": "active", "onset": "2019-06-21"}


def _post(
    client: httpx.Client,
    app: RunningApp,
    path: str,
    form: dict[str, str],
    files: dict[str, tuple[str, bytes, str]] | None = None,
) -> httpx.Response:
    data = {CSRF_FIELD: app.keys.csrf, **form}
    return client.post(path, data=data, files=files, headers={"origin": app.url})


def _count(ward: Ward, patient: bytes) -> int:
    return len(ward.client(ward.patient).chain.patient_records(patient))


def _adds_each_kind(client: httpx.Client, app: RunningApp, new: str) -> None:
    """Posts a condition, an allergy, a medication, a file and a pasted resource."""
    allergy = {"code": "other", "text": "Shellfish", "criticality": "high", "reaction": "Hives"}
    medication = {"code": "372567009", "dosage": "500 mg twice a day", "status": "active"}
    immunization = {
        "resourceType": "Immunization",
        "status": "completed",
        "vaccineCode": {"text": "Influenza vaccine"},
        "patient": {"reference": "Patient/elsewhere"},
        "occurrenceDateTime": "2025-10-01",
    }
    file = ("condition.json", (EXAMPLES / "condition.json").read_bytes(), "application/json")
    answers = [
        _post(client, app, f"{new}/condition", CONDITION),
        _post(client, app, f"{new}/allergy", allergy),
        _post(client, app, f"{new}/medication", medication),
        _post(client, app, f"{new}/upload", {"resource": ""}, {"file": file}),
        _post(client, app, f"{new}/upload", {"resource": json.dumps(immunization)}),
    ]
    assert [a.status_code for a in answers] == [303] * 5


def test_a_doctor_adds_each_kind_of_record_and_the_patient_sees_it_rendered(ward: Ward) -> None:
    patient = format_address(ward.patient.address)
    new = f"/patients/{patient}/records/new"
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        chart = client.get(f"/patients/{patient}").text
        offered = client.get(new).text
        form = client.get(f"{new}/upload").text
        _adds_each_kind(client, app, new)
    assert f'href="{new}"' in chart
    assert f'href="/patients/{patient}/observation"' in offered
    for kind in ("condition", "allergy", "medication", "upload"):
        assert f'href="{new}/{kind}"' in offered
    assert 'enctype="multipart/form-data"' in form and 'type="file"' in form
    assert _count(ward, ward.patient.address) == 5
    with app_of(ward, ward.patient) as app, app.browser() as client:
        home = client.get("/").text
    assert "resourceType" not in home
    for shown in (
        "Type 2 diabetes mellitus",
        "<dd>high</dd>",
        "<dd>Hives</dd>",
        "Metformin",
        "<dd>500 mg twice a day</dd>",
        "Influenza vaccine",
    ):
        assert shown in home
    assert home.count("Type 2 diabetes mellitus") == 2  # from the form and the file


def test_a_wrong_form_or_upload_is_refused_and_nothing_is_sealed(ward: Ward) -> None:
    new = f"/patients/{format_address(ward.patient.address)}/records/new"
    not_fhir = json.dumps({"resourceType": "Condition", "onsetDateTime": "soon"})
    oversize = json.dumps({"resourceType": "Condition", "note": "x" * MAX_RECORD_BYTES})
    cases = [
        ("condition", {**CONDITION, "onset": "21/06/2019"}, "is not a date"),
        ("medication", {"code": "372567009", "status": "taking"}, "&#39;taking&#39; is not one of"),
        ("upload", {"resource": '{"resourceType": "Condition",'}, "that is not JSON"),
        ("upload", {"resource": '{"name": "Jane"}'}, "it is not a FHIR resource"),
        ("upload", {"resource": not_fhir}, "Condition is not valid FHIR R4"),
        ("upload", {"resource": oversize}, "a record is at most 64 KiB"),
        ("upload", {"resource": "x" * UPLOAD_FORM_BYTES}, "the form is too large"),
    ]
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        for kind, form, says in cases:
            answer = _post(client, app, f"{new}/{kind}", form)
            assert (answer.status_code, says in answer.text) == (400, True), (kind, says)
        refilled = _post(client, app, f"{new}/condition", {**CONDITION, "onset": "21/06/2019"})
        unknown = client.get(f"{new}/surgery")
    assert 'role="alert"' in refilled.text and 'aria-describedby="form-error"' in refilled.text
    assert 'value="21/06/2019"' in refilled.text  # what was typed stays in the form
    assert '<option value="44054006" selected>' in refilled.text
    assert unknown.status_code == 400 and "there is no such form" in unknown.text
    assert _count(ward, ward.patient.address) == 0


def test_a_post_without_the_form_token_is_refused(ward: Ward) -> None:
    new = f"/patients/{format_address(ward.patient.address)}/records/new"
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        answer = client.post(f"{new}/condition", data=CONDITION, headers={"origin": app.url})
    assert answer.status_code == 403
    assert "This form is out of date" in answer.text
    assert _count(ward, ward.patient.address) == 0


def test_a_patient_adds_to_their_own_chart_and_to_no_one_elses(ward: Ward) -> None:
    """The chain lets a patient write their own records, and only a clinician (or a
    proxy with the write scope) another patient's."""
    own = format_address(ward.patient.address)
    other = f"/patients/{format_address(ward.stranger.address)}/records/new/condition"
    with app_of(ward, ward.patient) as app, app.browser() as client:
        home = client.get("/").text
        added = _post(client, app, f"/patients/{own}/records/new/condition", CONDITION)
        refused = _post(client, app, other, CONDITION)
        timeline = client.get("/").text
    assert f'href="/patients/{own}/records/new"' in home
    assert added.status_code == 303 and added.headers["location"] == f"/patients/{own}"
    assert "Type 2 diabetes mellitus" in timeline
    assert refused.status_code == 403 and 'role="alert"' in refused.text
    assert (_count(ward, ward.patient.address), _count(ward, ward.stranger.address)) == (1, 0)
