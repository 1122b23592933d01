"""The access pages over HTTP: the patient adds a proxy, grants and revokes a standing
consent and turns emergency access on through the forms (a post without the form's
token changes nothing); the proxy switches to the patient and acts for them; the
notices and the accounting of disclosures are shown."""

from __future__ import annotations

import httpx

from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from tests.web.conftest import DOCTOR_NAME, SECOND_DOCTOR_NAME, RunningApp, Ward, app_of


def _post(client: httpx.Client, app: RunningApp, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={CSRF_FIELD: app.keys.csrf, **form}, headers={"origin": app.url})


def test_the_patient_changes_access_through_the_forms(ward: Ward) -> None:
    doctor = format_address(ward.doctor.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        forged = client.post("/access/emergency-on", headers={"origin": app.url})
        on = _post(client, app, "/access/emergency-on")
        granted = _post(client, app, "/access/grant-consent", reader=doctor,
                        types="Observation", **{"purpose-TREAT": "on"})  # fmt: skip
        page = client.get("/access").text
        bad = _post(client, app, "/access/grant-consent", reader=doctor)
        (consent,) = ward.client(ward.patient).consents()
        revoked = _post(client, app, "/access/revoke-consent", consent=str(consent.consent_id))
        after = client.get("/access").text
    assert forged.status_code == 403
    assert on.status_code == granted.status_code == revoked.status_code == 303
    assert "On: a clinician may open" in page and "Turn emergency access off" in page
    assert f"Revoke consent {consent.consent_id} of {DOCTOR_NAME}" in page
    assert bad.status_code == 400 and "at least one purpose" in bad.text
    assert f"Revoke consent {consent.consent_id}" not in after and "revoked at block" in after
    assert ward.client(ward.patient).consents()[0].revoked_height > 0


def test_a_proxy_switches_to_the_patient_and_acts_for_them(ward: Ward) -> None:
    second, doctor = format_address(ward.second.address), format_address(ward.doctor.address)
    patient = format_address(ward.patient.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        added = _post(client, app, "/access/add-proxy", proxy=second, relation="parent",
                      **{"scope-grant": "on", "scope-read": "on"})  # fmt: skip
        assert added.status_code == 303
    with app_of(ward, ward.second) as app, app.browser() as client:
        mine = client.get("/access").text
        theirs = client.get("/access", params={"for": patient}).text
        granted = _post(client, app, "/access/grant-consent", reader=doctor, types="",
                        **{"for": patient, "purpose-TREAT": "on"})  # fmt: skip
        notices = client.get("/notices", params={"for": patient}).text
    assert f'<a href="/access?for={patient}">' in mine  # the switcher
    assert "You act for" in theirs and f'<a href="/vitals?for={patient}">Vitals</a>' in theirs
    assert granted.status_code == 303 and granted.headers["location"] == f"/access?for={patient}"
    (consent,) = ward.client(ward.patient).consents()
    assert consent.granted_by == ward.second.address and consent.reader == ward.doctor.address
    assert f"{SECOND_DOCTOR_NAME} became a proxy (parent: grant, read)" in notices


def test_the_notices_and_disclosures_pages(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    with app_of(ward, ward.patient) as app, app.browser() as client:
        notices = client.get("/notices").text
        disclosures = client.get("/disclosures")
    assert f'<a href="/records/{record_id.hex()}">A new record (Condition) written by' in notices
    assert disclosures.status_code == 200 and "Who read my data" in disclosures.text
