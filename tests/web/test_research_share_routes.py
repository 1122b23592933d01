"""A record's research copies over HTTP: the patient finds a research organisation by
name and shares a de-identified copy, which the organisation then reads, and revokes
it; only research organisations are offered; a form without the app's token, and a
doctor who is not the patient, change nothing."""

from __future__ import annotations

import httpx

from medchain.crypto import format_address
from medchain.web import CSRF_FIELD
from tests.api.harness import HOSPITAL, RESEARCH
from tests.web.conftest import DOCTOR_NAME, RunningApp, Ward, app_of

RESEARCH_NAME = RESEARCH.genesis().name
SHARE = f"Share a de-identified copy with {RESEARCH_NAME}"
REVOKE = f"Revoke the research copy of {RESEARCH_NAME}"


def _post(client: httpx.Client, app: RunningApp, path: str, **form: str) -> httpx.Response:
    return client.post(path, data={CSRF_FIELD: app.keys.csrf, **form}, headers={"origin": app.url})


def _copies(ward: Ward) -> list[bytes]:
    """The record ids the research organisation reads a copy of, decrypted by its SDK."""
    return [item.entry.record_id for item in ward.client(RESEARCH.account).research_data()]


def test_the_patient_shares_a_copy_by_name_then_revokes_it(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    path = f"/records/{record_id.hex()}"
    institution = format_address(RESEARCH.account.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        before = client.get(path).text
        found = client.get(path, params={"rq": "research"}).text
        shared = _post(client, app, f"{path}/research/share", institution=institution)
        after = client.get(path).text
        assert _copies(ward) == [record_id]
        with app_of(ward, RESEARCH.account) as theirs, theirs.browser() as reader:
            holdings = reader.get("/").text
        revoked = _post(client, app, f"{path}/research/revoke", institution=institution)
        last = client.get(path).text
    assert "Research copies" in before
    assert "No research organisation holds a copy of this record." in before
    assert SHARE in found and f'value="{institution}"' in found
    assert shared.status_code == 303 and shared.headers["location"] == path
    assert REVOKE in after and "shared at block" in after
    assert "Type 2 diabetes mellitus" in holdings
    assert revoked.status_code == 303
    assert _copies(ward) == []
    assert REVOKE not in last
    assert "No research organisation holds a copy of this record." in last


def test_only_research_organisations_are_offered(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    path = f"/records/{record_id.hex()}"
    with app_of(ward, ward.patient) as app, app.browser() as client:
        everyone = client.get(path, params={"rq": "test"}).text
        doctor = client.get(path, params={"rq": DOCTOR_NAME}).text
    assert SHARE in everyone
    assert f'value="{format_address(HOSPITAL.account.address)}"' not in everyone
    assert "Share a de-identified copy with" not in doctor
    assert f"No research organisation without a copy matches “{DOCTOR_NAME}”." in doctor


def test_a_share_without_the_form_token_is_refused(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    institution = format_address(RESEARCH.account.address)
    with app_of(ward, ward.patient) as app, app.browser() as client:
        refused = client.post(
            f"/records/{record_id.hex()}/research/share",
            data={"institution": institution},
            headers={"origin": app.url},
        )
    assert refused.status_code == 403
    assert "reload the page" in refused.text
    assert _copies(ward) == []


def test_a_doctor_may_not_share_the_patients_record(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    path = f"/records/{record_id.hex()}"
    institution = format_address(RESEARCH.account.address)
    trail = ward.client(ward.patient).chain.audit(record_id)
    with app_of(ward, ward.doctor) as app, app.browser() as client:
        page = client.get(path).text
        refused = _post(client, app, f"{path}/research/share", institution=institution)
    assert "Research copies" not in page
    assert refused.status_code == 403
    assert "only the patient who owns record" in refused.text
    assert _copies(ward) == []
    assert ward.client(ward.patient).chain.audit(record_id) == trail
