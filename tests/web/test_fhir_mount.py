"""The app's own FHIR R4 API under /fhir (medchain.web._fhir_mount): an EHR with the
bearer token the app printed reads and writes the account's records with fhirpy; the
browser's session reaches it too; nothing else does."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ForbiddenError

from medchain.fhir import patient_fhir_id, record_fhir_id
from tests.web.conftest import EXAMPLES, RunningApp, Ward, app_of


@contextmanager
def ehr_of(ward: Ward, who: str) -> Iterator[tuple[RunningApp, SyncFHIRClient]]:
    with app_of(ward, getattr(ward, who)) as app:
        ehr = SyncFHIRClient(f"{app.url}/fhir", authorization=f"Bearer {app.keys.fhir}")
        yield app, ehr


def _heart_rate(patient: str) -> dict[str, object]:
    resource = dict(json.loads((EXAMPLES / "observation-heart-rate.json").read_text()))
    resource["subject"] = {"reference": f"Patient/{patient}"}
    del resource["id"]  # the server names what it creates
    return resource


def test_an_ehr_writes_through_the_doctors_app_and_reads_through_the_patients(
    ward: Ward,
) -> None:
    patient = patient_fhir_id(ward.patient.address)
    with ehr_of(ward, "doctor") as (_, ehr):
        created = ehr.resource("Observation", **_heart_rate(patient))
        created.save()
    (record_id,) = ward.client(ward.patient).chain.patient_records(ward.patient.address)
    assert created["id"] == record_fhir_id(record_id)
    with ehr_of(ward, "patient") as (app, ehr):
        found = ehr.resources("Observation").search(patient=patient).fetch()
        assert [r["id"] for r in found] == [created["id"]]
        assert found[0]["valueQuantity"]["value"] == _heart_rate(patient)["valueQuantity"]["value"]  # type: ignore[index]
        with app.browser() as browser:  # the app's own session reaches it as well
            page = browser.get(f"/fhir/Observation/{created['id']}")
            links = browser.get("/fhir/Observation", params={"patient": patient}).json()
    assert page.status_code == 200 and page.json()["id"] == created["id"]
    assert page.headers["content-type"].startswith("application/fhir+json")
    assert links["link"][0]["url"].startswith(f"{app.url}/fhir/Observation")


def test_without_the_token_or_session_nothing_is_served(ward: Ward) -> None:
    ward.doctor_writes()
    with ehr_of(ward, "patient") as (app, _):
        wrong = SyncFHIRClient(f"{app.url}/fhir", authorization="Bearer not-the-token")
        bare = httpx.get(f"{app.url}/fhir/Condition")
        refused = httpx.get(f"{app.url}/fhir/Condition", headers={"authorization": "Bearer x"})
        pages = httpx.get(f"{app.url}/", headers={"authorization": f"Bearer {app.keys.fhir}"})
        try:
            wrong.resources("Condition").fetch()
            reached = True
        except AuthorizationError:
            reached = False
        with app.browser() as browser:
            forged = browser.post(
                "/fhir/Observation",
                json=_heart_rate(patient_fhir_id(ward.patient.address)),
                headers={"origin": "http://evil.example"},
            )
    assert (bare.status_code, refused.status_code) == (401, 401)
    assert pages.status_code == 401  # the FHIR token opens /fhir only
    assert not reached
    assert forged.status_code == 403


def test_a_record_the_account_may_not_read_is_forbidden(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    with ehr_of(ward, "second") as (_, ehr):
        try:
            ehr.reference("Condition", record_fhir_id(record_id)).to_resource()
            refused = ""
        except ForbiddenError as exc:
            refused = str(exc)
    assert "the patient (or their proxy) grants access" in refused
