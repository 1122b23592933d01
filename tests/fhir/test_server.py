"""The FHIR facade driven as an EHR would: two independent FHIR clients from PyPI
(fhirpy, fhirclient) over a real uvicorn on 127.0.0.1, against an in-memory chain.
Every response body any test receives is checked to validate as FHIR R4."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fhirclient import client as smart_client  # type: ignore[import-untyped]
from fhirclient.models.capabilitystatement import (  # type: ignore[import-untyped]
    CapabilityStatement,
)
from fhirclient.models.observation import (  # type: ignore[import-untyped]
    Observation as SmartObservation,
)
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ForbiddenError

from medchain.client import validate_resource
from medchain.fhir._convert import FHIR_JSON, patient_fhir_id
from tests.fhir.harness import Facades, facades, observation
from tests.waiting import wait_until


@pytest.fixture(scope="module")
def served() -> Iterator[Facades]:
    with facades() as running:
        yield running


@pytest.fixture(autouse=True)
def every_body_validates(served: Facades) -> Iterator[None]:
    """After each test: every response it received is FHIR JSON that validates as R4."""
    first = len(served.recorder.answers)
    yield
    answers = served.recorder.answers[first:]
    assert answers
    for answer in answers:
        if "$export" in answer.path:  # status and files: see _bulk_export
            continue
        assert answer.content_type.startswith(FHIR_JSON), answer
        validate_resource(answer.body)


def _fhirpy(served: Facades, name: str) -> SyncFHIRClient:
    return SyncFHIRClient(served.url(name), authorization=f"Bearer {served.tokens[name]}")


def _smart(served: Facades, name: str) -> smart_client.FHIRClient:
    smart = smart_client.FHIRClient(settings={"app_id": "ehr", "api_base": served.url(name)})
    smart.server.session.headers["Authorization"] = f"Bearer {served.tokens[name]}"
    return smart


def _patient_id(served: Facades) -> str:
    return patient_fhir_id(served.people["patient"].address)


def _create(served: Facades, resource: dict[str, Any], name: str = "doctor") -> dict[str, Any]:
    created = _fhirpy(served, name).resource("Observation", **resource)
    created.save()
    return dict(created)


def test_doctor_creates_and_patient_finds_it_by_patient_code_and_date(served: Facades) -> None:
    patient = _patient_id(served)
    created = _create(served, observation(patient, "29463-7", "2024-03-05T10:00:00Z", 81))
    assert created["meta"]["versionId"] == "1"
    assert created["subject"]["reference"] == f"Patient/{patient}"
    _create(served, observation(patient, "29463-7", "2023-01-01T10:00:00Z", 79))  # out of range
    by_code = SmartObservation.where(struct={"patient": patient, "code": "29463-7"})
    found = list(by_code.perform_resources_iter(_smart(served, "patient").server))
    assert len(found) == 2
    assert {o.meta.versionId for o in found} == {"1"}
    in_range = (
        _fhirpy(served, "patient")
        .resources("Observation")
        .search(
            patient=patient,
            code="http://loinc.org|29463-7",
            date=["ge2024-03-01", "lt2024-04"],
        )
        .fetch_all()
    )
    assert [o["id"] for o in in_range] == [created["id"]]
    assert in_range[0]["valueQuantity"]["value"] == 81


def test_page_through_250_results_with_next_links(served: Facades) -> None:
    patient = _patient_id(served)

    def put_many(running: Facades) -> None:
        doctor = running.people["doctor"]
        for i in range(250):
            when = f"2020-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"
            doctor.put_record(
                running.people["patient"].address, observation(patient, "2708-6", when, i)
            )

    served.call(put_many)
    query = {"patient": patient, "code": "2708-6", "_count": 40}
    all_of_them = _fhirpy(served, "patient").resources("Observation").search(**query).fetch_all()
    assert len(all_of_them) == 250
    assert len({o["id"] for o in all_of_them}) == 250
    assert sorted(o["valueQuantity"]["value"] for o in all_of_them) == list(range(250))
    smart = _smart(served, "patient")
    # fhirclient follows no links itself: as an EHR would, by hand
    page = smart.server.request_json(f"Observation?patient={patient}&code=2708-6&_count=100")
    seen, pages = [], 0
    while True:
        pages += 1
        seen += [e["resource"]["id"] for e in page["entry"]]
        assert page["total"] == 250
        next_links = [link["url"] for link in page["link"] if link["relation"] == "next"]
        if not next_links:
            break
        assert "_offset=" in next_links[0]
        page = smart.server.request_json(next_links[0])
    assert pages == 3
    assert sorted(seen) == sorted(o["id"] for o in all_of_them)


def test_update_makes_a_version_and_vread_reads_the_old_one(served: Facades) -> None:
    patient = _patient_id(served)
    created = _create(served, observation(patient, "8310-5", value=36))
    smart = _smart(served, "doctor")
    changed = {**created, "valueQuantity": {**created["valueQuantity"], "value": 37}}
    response = smart.server.put_json(f"Observation/{created['id']}", changed)
    assert response.status_code == 200
    assert response.json()["meta"]["versionId"] == "2"
    old = SmartObservation.read_from(f"Observation/{created['id']}/_history/1", smart.server)
    assert old.valueQuantity.value == 36
    assert old.meta.versionId == "1"
    current = _fhirpy(served, "patient").reference("Observation", created["id"]).to_resource()
    assert current["valueQuantity"]["value"] == 37
    history = smart.server.request_json(f"Observation/{created['id']}/_history")
    assert history["type"] == "history"
    assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["2", "1"]


def test_stranger_is_forbidden_to_read(served: Facades) -> None:
    created = _create(served, observation(_patient_id(served), "8480-6"))
    stranger = _fhirpy(served, "stranger")
    with pytest.raises(ForbiddenError):
        stranger.reference("Observation", created["id"]).to_resource()
    found = stranger.resources("Observation").search(patient=_patient_id(served)).fetch_all()
    assert created["id"] not in {o["id"] for o in found}


def test_everything_holds_the_patients_resources_and_profile(served: Facades) -> None:
    patient = _patient_id(served)
    created = _create(served, observation(patient, "8462-4"))
    smart = _smart(served, "patient")
    bundle = smart.server.request_json(f"Patient/{patient}/$everything")
    by_type = {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}
    assert ("Observation", created["id"]) in by_type
    assert ("Patient", patient) in by_type
    assert bundle["total"] == len(bundle["entry"])


def test_capability_statement_reads_with_fhirclient(served: Facades) -> None:
    smart = _smart(served, "patient")
    statement = CapabilityStatement.read_from("metadata", smart.server)
    resources = {r.type: r for r in statement.rest[0].resource}
    interactions = {i.code for i in resources["Observation"].interaction}
    assert {"read", "vread", "search-type", "create", "update"} <= interactions
    params = {p.name for p in resources["Observation"].searchParam}
    assert {"patient", "code", "date", "category", "status", "_lastUpdated"} <= params
    assert statement.fhirVersion == "4.0.1"


def _raw(served: Facades, name: str, token: bool = True) -> httpx.Client:
    headers = served.headers(name) if token else {}
    return httpx.Client(base_url=served.url(name), headers=headers, timeout=60)


def _issue(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    return dict(outcome["issue"][0])


def test_invalid_resource_is_400_naming_the_element(served: Facades) -> None:
    bad = observation(_patient_id(served))
    del bad["status"]
    with _raw(served, "doctor") as http:
        response = http.post("/Observation", json=bad, headers={"Content-Type": FHIR_JSON})
    assert _issue(response, 400, "invalid")["expression"] == ["Observation.status"]


def test_without_the_token_is_401(served: Facades) -> None:
    with _raw(served, "patient", token=False) as http:
        response = http.get(f"/Patient/{_patient_id(served)}")
        assert response.headers["www-authenticate"] == "Bearer"
        _issue(response, 401, "login")
        assert http.get("/metadata").status_code == 200


def test_unknown_record_is_404_and_unknown_type_too(served: Facades) -> None:
    with _raw(served, "patient") as http:
        _issue(http.get("/Observation/" + "ab" * 16), 404, "not-found")
        _issue(http.get("/Observation/not-a-record"), 404, "not-found")
        _issue(http.get("/Basic/x"), 404, "not-supported")


def test_erased_record_is_410(served: Facades) -> None:
    created = _create(served, observation(_patient_id(served), "8302-2"))
    served.call(lambda r: r.people["patient"].erase(bytes.fromhex(created["id"])))
    with _raw(served, "patient") as http:
        _issue(http.get(f"/Observation/{created['id']}"), 410, "deleted")


def test_unknown_search_parameter_is_422_in_strict_mode_only(served: Facades) -> None:
    with _raw(served, "patient") as http:
        strict = http.get("/Observation?colour=red", headers={"Prefer": "handling=strict"})
        assert _issue(strict, 422, "not-supported")["expression"] == ["colour"]
        lenient = http.get("/Observation?colour=red")
        assert lenient.status_code == 200
        assert "colour" not in lenient.json()["link"][0]["url"]


def test_wrong_media_type_and_method(served: Facades) -> None:
    with _raw(served, "doctor") as http:
        body = observation(_patient_id(served))
        response = http.post(
            "/Observation", content=str(body), headers={"Content-Type": "text/plain"}
        )
        _issue(response, 415, "not-supported")
        _issue(http.put(f"/Patient/{_patient_id(served)}", json={}), 405, "not-supported")
        _issue(http.delete("/Observation/ab"), 405, "not-supported")


def test_create_answers_201_with_location_and_etag(served: Facades) -> None:
    with _raw(served, "doctor") as http:
        body = observation(_patient_id(served), "9279-1")
        response = http.post("/Observation", json=body, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == 201
    created = response.json()
    assert response.headers["etag"] == 'W/"1"'
    assert response.headers["location"] == (
        f"{served.url('doctor')}/Observation/{created['id']}/_history/1"
    )


def test_search_by_post_form(served: Facades) -> None:
    created = _create(served, observation(_patient_id(served), "59408-5"))
    with _raw(served, "patient") as http:
        response = http.post(
            "/Observation/_search", data={"patient": _patient_id(served), "code": "59408-5"}
        )
    assert response.status_code == 200
    assert [e["resource"]["id"] for e in response.json()["entry"]] == [created["id"]]


def _bulk_export(served: Facades, name: str, path: str) -> dict[str, list[dict[str, Any]]]:
    """Kick off with fhirclient, poll the status URL with fhirpy until the manifest
    comes, fetch each NDJSON file and validate every line with fhir.resources."""
    smart = _smart(served, name)
    kick_off = smart.server._get(path, headers={"Prefer": "respond-async"})
    assert kick_off.status_code == 202
    status_url = kick_off.headers["Content-Location"]
    poller = _fhirpy(served, name)
    manifests: list[dict[str, Any]] = []

    def done() -> bool:
        manifest = poller.execute(status_url, method="get")
        if manifest is not None:
            manifests.append(dict(manifest))
        return manifest is not None

    wait_until(done, what=f"the export {status_url}")
    manifest = manifests[0]
    assert manifest["requiresAccessToken"] is True
    files: dict[str, list[dict[str, Any]]] = {}
    for output in manifest["output"]:
        response = smart.server.session.get(output["url"])
        assert response.status_code == 200
        lines = response.text.splitlines()
        assert len(lines) == output["count"]
        files[output["type"]] = [validate_resource(line) for line in lines]
    return files


def test_patient_bulk_exports_everything_they_own(served: Facades) -> None:
    created = _create(served, observation(_patient_id(served), "8867-4"))
    files = _bulk_export(served, "patient", "Patient/$export")
    assert created["id"] in {o["id"] for o in files["Observation"]}
    assert [p["id"] for p in files["Patient"]] == [_patient_id(served)]
    assert all(
        o["subject"]["reference"] == f"Patient/{_patient_id(served)}" for o in files["Observation"]
    )


def test_research_organisation_exports_its_deidentified_copies(served: Facades) -> None:
    created = _create(served, observation(_patient_id(served), "2339-0"))

    def share(running: Facades) -> None:
        patient, research = running.people["patient"], running.people["research"]
        patient.research_grant(bytes.fromhex(created["id"]), research.address)

    served.call(share)
    files = _bulk_export(served, "research", "$export")
    copy = next(o for o in files["Observation"] if o["id"] == created["id"])
    assert _patient_id(served) not in str(copy)


def test_a_clinicians_patient_export_holds_only_what_they_own(served: Facades) -> None:
    created = _create(served, observation(_patient_id(served), "8867-4"))
    files = _bulk_export(served, "doctor", "Patient/$export")
    doctor = patient_fhir_id(served.people["doctor"].address)
    assert [p["id"] for p in files["Patient"]] == [doctor]  # registered as a patient too
    assert created["id"] not in {o["id"] for o in files.get("Observation", [])}


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/Observation", b"{not json", 400),
        ("POST", "/Observation", b"\xff\xfe", 400),
        ("POST", "/Observation", b"[]", 400),
        ("POST", "/Observation", b'{"resourceType": "Condition"}', 400),
        ("PUT", "/Observation/" + "ab" * 16, b'{"resourceType": "Observation"}', 400),
        ("GET", "/Observation?_count=many", b"", 400),
        ("GET", "/Observation?date=yesterday", b"", 400),
        ("GET", "/Observation/" + "ab" * 32, b"", 404),
        ("GET", "/Observation/" + "ab" * 16 + "/_history/x", b"", 404),
        ("GET", "/Observation/" + "ab" * 16 + "/_history/0", b"", 404),
        ("GET", "/Patient/not-an-address/$everything", b"", 404),
        ("GET", "/Patient/not-an-address", b"", 404),
        ("GET", "/Consent/nothing", b"", 404),
        ("POST", "/Patient", b'{"resourceType": "Patient"}', 405),
        ("GET", "/Observation/%00", b"", 404),
    ],
)
def test_bad_requests_answer_an_outcome_never_a_500(
    served: Facades, method: str, path: str, body: bytes, status: int
) -> None:
    with _raw(served, "doctor") as http:
        response = http.request(method, path, content=body, headers={"Content-Type": FHIR_JSON})
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
