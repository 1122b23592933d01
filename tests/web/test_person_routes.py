"""The key holder's pages over HTTP: a doctor adds vital signs through the form, the
patient sees them rendered, grants a second doctor by name, and revokes; a bad form is
refused before anything is sealed."""

from __future__ import annotations

import httpx

from medchain.app import ProxyRelation, ProxyScope, Role
from medchain.client import add_proxy
from medchain.crypto import AccountKeys, format_address
from medchain.web import CSRF_FIELD
from tests.api.harness import RESEARCH
from tests.web.conftest import SECOND_DOCTOR_NAME, RunningApp, Ward, app_of


def _post(client: httpx.Client, app: RunningApp, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={CSRF_FIELD: app.keys.csrf, **form}, headers={"origin": app.url})


def _records(ward: Ward) -> list[bytes]:
    return ward.client(ward.patient).chain.patient_records(ward.patient.address)


def test_a_doctor_adds_vital_signs_and_the_patient_sees_them_rendered(ward: Ward) -> None:
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        form = client.get(f"/patients/{patient}/observation")
        added = _post(
            client, app, f"/patients/{patient}/observation", kind="heart-rate", value="72"
        )
    assert 'name="csrf"' in form.text
    assert added.status_code == 303
    assert added.headers["location"] == f"/patients/{patient}"
    (record_id,) = _records(ward)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        home = client.get("/").text
        record = client.get(f"/records/{record_id.hex()}").text
    assert "Heart rate" in home
    assert "<dd>72 /min</dd>" in home
    assert "resourceType" not in home
    assert "<summary>Show the FHIR JSON</summary>" in record
    assert '"resourceType": "Observation"' in record


def test_a_bad_form_is_refused_and_nothing_is_sealed(ward: Ward) -> None:
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        answer = _post(
            client, app, f"/patients/{patient}/observation", kind="heart-rate", value="fast"
        )
    assert answer.status_code == 400
    assert "is not a number" in answer.text
    assert 'value="fast"' in answer.text  # what was typed stays in the form
    assert _records(ward) == []


def test_the_patient_grants_by_name_then_revokes(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    path = f"/records/{record_id.hex()}"
    second = format_address(ward.second.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        found = client.get(path, params={"q": "Osei"}).text
        assert f'value="{second}"' in found
        assert f"Grant {SECOND_DOCTOR_NAME}" in found
        granted = _post(client, app, f"{path}/grant", reader=second)
        assert granted.status_code == 303
        assert f"Revoke {SECOND_DOCTOR_NAME}" in client.get(path).text
        with app_of(ward, ward.second) as theirs, theirs.browser() as reader:
            assert "Type 2 diabetes mellitus" in reader.get(path).text
            assert _post(client, app, f"{path}/revoke", reader=second).status_code == 303
            ward.client(ward.doctor).add_version(record_id, _condition_update())
            after = reader.get(path).text
    assert ward.second.address not in ward.client(ward.patient).record(record_id).readers
    assert "This record is not shared with you." in after
    assert "Type 2 diabetes" not in after


def _condition_update() -> dict[str, object]:
    return {
        "resourceType": "Condition",
        "code": {"text": "Type 2 diabetes mellitus, controlled"},
        "subject": {"reference": "Patient/p1"},
    }


def test_only_the_patient_may_grant(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        page = client.get(f"/records/{record_id.hex()}").text
        answer = _post(
            client,
            app,
            f"/records/{record_id.hex()}/grant",
            reader=format_address(ward.second.address),
        )
    assert "Let someone read it" not in page
    assert answer.status_code == 403  # not the doctor's to do: forbidden, not malformed
    assert ward.second.address not in ward.client(ward.patient).record(record_id).readers


def _proxy(ward: Ward, *scopes: ProxyScope) -> AccountKeys:
    """A new account the patient makes its proxy with `scopes`."""
    keys = AccountKeys.generate()
    ward.client(keys).register(Role.PATIENT, f"Proxy {'+'.join(s.value for s in scopes)}")
    add_proxy(ward.client(ward.patient), keys.address, ProxyRelation.PARENT, scopes)
    return keys


def test_a_grant_proxy_grants_and_revokes_through_the_record_page(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    path = f"/records/{record_id.hex()}"
    second = format_address(ward.second.address)
    proxy = _proxy(ward, ProxyScope.GRANT, ProxyScope.READ)
    with app_of(ward, proxy) as app, app.browser() as client:
        found = client.get(path, params={"q": "Osei"}).text
        granted = _post(client, app, f"{path}/grant", reader=second)
        after = client.get(path).text
        revoked = _post(client, app, f"{path}/revoke", reader=second)
    assert "Let someone read it" in found and f"Grant {SECOND_DOCTOR_NAME}" in found
    assert granted.status_code == 303 and f"Revoke {SECOND_DOCTOR_NAME}" in after
    assert revoked.status_code == 303
    audit = ward.client(ward.patient).chain.audit(record_id)
    assert [(e.action.value, e.subject) for e in audit[-2:]] == [
        ("granted", ward.second.address),
        ("revoked", ward.second.address),
    ]
    assert ward.second.address not in ward.client(ward.patient).record(record_id).readers


def test_a_proxy_without_the_grant_scope_sees_no_grant_section(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    path = f"/records/{record_id.hex()}"
    reading = _proxy(ward, ProxyScope.READ, ProxyScope.WRITE, ProxyScope.DEVICES)
    with app_of(ward, reading) as app, app.browser() as client:
        page = client.get(path, params={"q": "Osei"}).text
        answer = _post(client, app, f"{path}/grant", reader=format_address(ward.second.address))
    assert "Type 2 diabetes mellitus" in page  # it reads the record, but may not share it
    assert "Let someone read it" not in page and "Revoke " not in page
    assert answer.status_code == 403
    assert ward.second.address not in ward.client(ward.patient).record(record_id).readers


def test_a_grant_proxy_that_cannot_read_is_told_what_it_needs(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    granting = _proxy(ward, ProxyScope.GRANT)
    with app_of(ward, granting) as app, app.browser() as client:
        page = client.get(f"/records/{record_id.hex()}", params={"q": "Osei"}).text
    assert "Let someone read it" in page and "once you can read it" in page
    assert f"Grant {SECOND_DOCTOR_NAME}" not in page


def test_a_grant_proxy_that_cannot_read_withdraws_research_copies_but_makes_none(
    ward: Ward,
) -> None:
    record_id = ward.doctor_writes()
    ward.client(ward.patient).research_grant(record_id, RESEARCH.account.address)
    granting = _proxy(ward, ProxyScope.GRANT)
    name = RESEARCH.genesis().name
    with app_of(ward, granting) as app, app.browser() as client:
        page = client.get(f"/records/{record_id.hex()}", params={"rq": name[:4]}).text
    assert "Research copies" in page and "a copy is made from it" in page
    assert f"Revoke the research copy of {name}" in page
    assert "Share a de-identified copy with" not in page and 'name="rq"' not in page


def test_bad_addresses_and_record_ids_get_a_clear_page(ward: Ward) -> None:
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        bad_id = client.get("/records/xyz")
        unknown = client.get("/records/" + "00" * 16)
        bad_patient = client.get("/patients/not-an-address")
        bad_form = client.get("/patients/not-an-address/observation")
    assert bad_id.status_code == 400 and "not a record id" in bad_id.text
    assert unknown.status_code == 400
    assert bad_patient.status_code == 400
    assert bad_form.status_code == 400


def test_a_clinician_finds_a_patient_by_address(ward: Ward) -> None:
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        page = client.get("/", params={"q": patient[-12:]}).text
    assert f'href="/patients/{patient}"' in page
    assert "(clinician)" in page
