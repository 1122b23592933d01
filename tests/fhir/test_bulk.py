"""FHIR Bulk Data export over HTTP (medchain.fhir._bulk and _bulk_router): kick-off,
status, manifest, files, cancel, expiry, and refusals as OperationOutcomes."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from fhir.resources import R4B

from medchain.client import validate_resource
from medchain.fhir import BulkExports, ExportKind, ExportSource, bulk_router
from medchain.gateway import show_time
from medchain.types import MedchainError
from tests.waiting import wait_until

BASE = "http://testserver/fhir"
ASYNC = {"Prefer": "respond-async", "Accept": "application/fhir+json"}
T0 = 1_714_550_400_000  # 2024-05-01T08:00:00Z
PATIENT = "Patient/mc1example"


def observation(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": f"obs-{n}",
        "meta": {"versionId": "1", "lastUpdated": show_time(T0 + n * 60_000)},
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": PATIENT},
        "valueQuantity": {"value": 60 + n, "system": "http://unitsofmeasure.org", "code": "/min"},
    }


def condition(n: int) -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "id": f"cond-{n}",
        "meta": {"versionId": "2", "lastUpdated": show_time(T0 + n * 60_000)},
        "subject": {"reference": PATIENT},
        "code": {"text": "Type 2 diabetes mellitus"},
    }


RESOURCES = [observation(n) for n in range(5)] + [condition(n) for n in range(3)]


class FakeSource:
    """An ExportSource over RESOURCES that records what it was asked and filters by type
    and `_since` (last updated strictly after), as the facade's sources do. With a
    `gate`, it waits on it after the first resource, so a test sees a running job."""

    def __init__(self, resources: list[dict[str, Any]] = RESOURCES) -> None:
        self.resources = resources
        self.calls: list[tuple[ExportKind, frozenset[str] | None, int | None]] = []
        self.gate: threading.Event | None = None

    def __call__(
        self, kind: ExportKind, types: frozenset[str] | None, since_ms: int | None
    ) -> Iterator[dict[str, Any]]:
        self.calls.append((kind, types, since_ms))
        for i, resource in enumerate(self.resources):
            if i == 1 and self.gate is not None:
                assert self.gate.wait(60), "the test never opened the gate"
            if types is not None and resource["resourceType"] not in types:
                continue
            if since_ms is not None and updated_ms(resource) <= since_ms:
                continue
            yield resource


def updated_ms(resource: dict[str, Any]) -> int:
    n = int(resource["id"].rsplit("-", 1)[1])
    return T0 + n * 60_000


class Clock:
    def __init__(self) -> None:
        self.now_ms = T0

    def __call__(self) -> int:
        return self.now_ms


def make_client(source: ExportSource, **options: Any) -> tuple[TestClient, BulkExports]:
    exports = BulkExports(source, **options)
    app = FastAPI()

    def base_url(request: Request) -> str:
        return f"{str(request.base_url).rstrip('/')}/fhir"

    app.include_router(bulk_router(exports, base_url), prefix="/fhir")
    return TestClient(app), exports


@pytest.fixture
def source() -> FakeSource:
    return FakeSource()


@pytest.fixture
def client(source: FakeSource) -> Iterator[TestClient]:
    test_client, exports = make_client(source)
    with exports:
        yield test_client


def assert_outcome(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    validate_resource(body)
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == code
    return dict(body)


def kick_off(client: TestClient, path: str = "/fhir/$export", **params: str) -> str:
    response = client.get(path, params=params, headers=ASYNC)
    assert response.status_code == 202, response.text
    assert_outcome(response, 202, "informational")
    location = str(response.headers["content-location"])
    assert location.startswith(f"{BASE}/$export-status/")
    return location.removeprefix("http://testserver")


def manifest(client: TestClient, status_path: str) -> dict[str, Any]:
    """Poll the status URL as a Bulk Data client does until the manifest comes."""
    answers: list[httpx.Response] = []

    def done() -> bool:
        answers.append(client.get(status_path))
        return answers[-1].status_code != 202

    wait_until(done, what="the export to finish")
    response = answers[-1]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "expires" in response.headers
    return dict(response.json())


def download(client: TestClient, url: str) -> list[dict[str, Any]]:
    """A file's lines, each parsed by fhir.resources' own model of its type."""
    response = client.get(url.removeprefix("http://testserver"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/fhir+ndjson")
    lines = response.text.split("\n")
    assert lines[-1] == ""  # every line ends with a newline, the last one too
    parsed = []
    for line in lines[:-1]:
        resource = json.loads(line)
        model = R4B.get_fhir_model_class(resource["resourceType"]).model_validate_json(line)
        assert model.get_resource_type() == resource["resourceType"]
        assert model.model_dump().get("id") == resource.get("id")
        parsed.append(resource)
    return parsed


def test_a_kick_off_without_prefer_respond_async_is_refused(
    client: TestClient, source: FakeSource
) -> None:
    response = client.get("/fhir/$export", headers={"Accept": "application/fhir+json"})
    assert "respond-async" in assert_outcome(response, 400, "invalid")["issue"][0]["diagnostics"]
    assert source.calls == []


def test_kick_off_poll_manifest_and_files(client: TestClient, source: FakeSource) -> None:
    status_path = kick_off(client, _outputFormat="application/fhir+ndjson")
    body = manifest(client, status_path)
    assert body["requiresAccessToken"] is True
    assert body["request"] == f"{BASE}/$export?_outputFormat=application%2Ffhir%2Bndjson"
    assert body["transactionTime"].endswith("Z")
    assert body["error"] == []
    assert [(o["type"], o["count"]) for o in body["output"]] == [
        ("Condition", 3),
        ("Observation", 5),
    ]
    exported = {}
    for output in body["output"]:
        assert output["url"].startswith(f"{BASE}/$export-files/")
        lines = download(client, output["url"])
        assert {r["resourceType"] for r in lines} == {output["type"]}
        exported.update({r["id"]: r for r in lines})
    assert exported == {r["id"]: r for r in RESOURCES}  # as the source gave them
    assert source.calls == [(ExportKind.SYSTEM, None, None)]


def test_a_patient_export_asks_the_source_for_the_patients_resources(
    client: TestClient, source: FakeSource
) -> None:
    body = manifest(client, kick_off(client, "/fhir/Patient/$export"))
    assert sum(o["count"] for o in body["output"]) == len(RESOURCES)
    assert source.calls == [(ExportKind.PATIENT, None, None)]


def test_type_filter(client: TestClient, source: FakeSource) -> None:
    body = manifest(client, kick_off(client, _type="Observation"))
    assert [(o["type"], o["count"]) for o in body["output"]] == [("Observation", 5)]
    assert source.calls == [(ExportKind.SYSTEM, frozenset({"Observation"}), None)]
    source.calls.clear()
    response = client.get("/fhir/$export?_type=Condition,Observation&_type=Patient", headers=ASYNC)
    status_path = response.headers["content-location"].removeprefix("http://testserver")
    manifest(client, status_path)
    assert source.calls[0][1] == frozenset({"Condition", "Observation", "Patient"})


def test_since_filter(client: TestClient, source: FakeSource) -> None:
    since = "2024-05-01T08:02:00Z"  # after obs-2 and cond-2 were last updated
    body = manifest(client, kick_off(client, _since=since))
    ids = {r["id"] for o in body["output"] for r in download(client, o["url"])}
    assert ids == {"obs-3", "obs-4"}
    assert source.calls == [(ExportKind.SYSTEM, None, T0 + 120_000)]
    source.calls.clear()
    manifest(client, kick_off(client, _since="2024-05-01T10:02:00+02:00"))
    assert source.calls == [(ExportKind.SYSTEM, None, T0 + 120_000)]


def test_a_running_export_reports_progress_and_delete_cancels_it(source: FakeSource) -> None:
    source.gate = threading.Event()
    client, exports = make_client(source)
    with exports:
        status_path = kick_off(client)
        running = client.get(status_path)
        assert running.status_code == 202
        assert running.headers["x-progress"].endswith("resources written")
        assert int(running.headers["retry-after"]) > 0
        [job_dir] = list(exports.root.iterdir())
        wait_until(lambda: any(job_dir.iterdir()), what="the first file")
        assert_outcome(client.delete(status_path), 202, "informational")
        source.gate.set()
        wait_until(lambda: not job_dir.exists(), what="the cancelled export's files to go")
        assert_outcome(client.get(status_path), 404, "not-found")


def test_delete_of_a_finished_export_deletes_its_files(
    source: FakeSource,
) -> None:
    client, exports = make_client(source)
    with exports:
        status_path = kick_off(client)
        body = manifest(client, status_path)
        [job_dir] = list(exports.root.iterdir())
        assert {p.name for p in job_dir.iterdir()} == {"Condition.ndjson", "Observation.ndjson"}
        assert_outcome(client.delete(status_path), 202, "informational")
        assert not job_dir.exists()
        assert_outcome(client.get(status_path), 404, "not-found")
        file_path = body["output"][0]["url"].removeprefix("http://testserver")
        assert_outcome(client.get(file_path), 404, "not-found")


def test_an_unknown_export_is_not_found(client: TestClient) -> None:
    assert_outcome(client.get("/fhir/$export-status/nope"), 404, "not-found")
    assert_outcome(client.delete("/fhir/$export-status/nope"), 404, "not-found")
    assert_outcome(client.get("/fhir/$export-files/nope/Observation.ndjson"), 404, "not-found")


def test_a_file_the_export_has_not_is_not_found(client: TestClient) -> None:
    status_path = kick_off(client, _type="Observation")
    manifest(client, status_path)
    job_id = status_path.rsplit("/", 1)[1]
    for name in ("Condition.ndjson", "../Observation.ndjson", "errors.ndjson"):
        response = client.get(f"/fhir/$export-files/{job_id}/{name}")
        assert response.status_code == 404


def test_files_are_private(source: FakeSource) -> None:
    client, exports = make_client(source)
    with exports:
        manifest(client, kick_off(client))
        assert stat.S_IMODE(exports.root.stat().st_mode) == 0o700
        [job_dir] = list(exports.root.iterdir())
        assert stat.S_IMODE(job_dir.stat().st_mode) == 0o700
        for path in job_dir.iterdir():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not exports.root.exists()  # closing deletes everything


def test_more_exports_than_allowed_at_once_are_throttled(source: FakeSource) -> None:
    source.gate = threading.Event()
    client, exports = make_client(source, max_running=1)
    with exports:
        first = kick_off(client)
        response = client.get("/fhir/$export", headers=ASYNC)
        assert_outcome(response, 429, "throttled")
        assert int(response.headers["retry-after"]) > 0
        source.gate.set()
        manifest(client, first)
        manifest(client, kick_off(client))  # one finished: another may start


def test_a_finished_export_expires(source: FakeSource) -> None:
    clock = Clock()
    client, exports = make_client(source, clock=clock, expiry_ms=3_600_000)
    with exports:
        status_path = kick_off(client)
        manifest(client, status_path)
        [job_dir] = list(exports.root.iterdir())
        clock.now_ms += 3_599_999
        assert client.get(status_path).status_code == 200
        clock.now_ms += 1
        assert_outcome(client.get(status_path), 404, "not-found")
        assert not job_dir.exists()


def test_an_invalid_resource_is_left_out_and_reported(client: TestClient) -> None:
    bad = observation(9) | {"status": 42}
    test_client, exports = make_client(FakeSource([observation(1), bad]))
    with exports:
        body = manifest(test_client, kick_off(test_client))
        assert [(o["type"], o["count"]) for o in body["output"]] == [("Observation", 1)]
        [error] = body["error"]
        assert (error["type"], error["count"]) == ("OperationOutcome", 1)
        [outcome] = download(test_client, error["url"])
        assert "Observation/obs-9 was left out" in outcome["issue"][0]["diagnostics"]
        assert "status" in outcome["issue"][0]["diagnostics"]


def test_a_failing_source_fails_the_export_with_an_outcome() -> None:
    def failing(
        kind: ExportKind, types: frozenset[str] | None, since_ms: int | None
    ) -> Iterator[dict[str, Any]]:
        yield observation(1)
        raise MedchainError("the node at http://127.0.0.1:1 is unreachable")

    client, exports = make_client(failing)
    with exports:
        status_path = kick_off(client)
        wait_until(lambda: client.get(status_path).status_code != 202, what="the failure")
        outcome = assert_outcome(client.get(status_path), 502, "exception")
        assert "unreachable" in outcome["issue"][0]["diagnostics"]
        assert list(exports.root.iterdir()) == []


@pytest.mark.parametrize(
    ("params", "headers", "code"),
    [
        ("_outputFormat=text/csv", ASYNC, "invalid"),
        ("_since=yesterday", ASYNC, "invalid"),
        ("_since=2024-05-01T08:00:00", ASYNC, "invalid"),  # an instant has a zone
        ("_type=observation", ASYNC, "invalid"),
        ("_elements=id", ASYNC, "not-supported"),
        ("", {"Prefer": "respond-async", "Accept": "text/html"}, "invalid"),
    ],
)
def test_bad_kick_offs_are_refused_with_an_outcome(
    client: TestClient, source: FakeSource, params: str, headers: dict[str, str], code: str
) -> None:
    assert_outcome(client.get(f"/fhir/$export?{params}", headers=headers), 400, code)
    assert source.calls == []


def test_abbreviated_output_formats_and_an_unencoded_plus_are_accepted(
    client: TestClient,
) -> None:
    for fmt in ("ndjson", "application/ndjson", "application/fhir+ndjson"):
        manifest(client, kick_off(client, _outputFormat=fmt))
    response = client.get("/fhir/$export?_outputFormat=application/fhir+ndjson", headers=ASYNC)
    assert response.status_code == 202


def test_lenient_handling_ignores_what_is_not_supported_and_says_so(source: FakeSource) -> None:
    client, exports = make_client(source, resource_types=frozenset({"Observation", "Condition"}))
    with exports:
        headers = ASYNC | {"Prefer": "respond-async, handling=lenient"}
        response = client.get("/fhir/$export?_type=Observation,Basic&_elements=id", headers=headers)
        body = manifest(
            client, response.headers["content-location"].removeprefix("http://testserver")
        )
        assert [o["type"] for o in body["output"]] == ["Observation"]
        [error] = body["error"]
        notes = [o["issue"][0] for o in download(client, error["url"])]
        assert {n["severity"] for n in notes} == {"warning"}
        assert {n["diagnostics"].split()[2] for n in notes} == {"_type=Basic", "_elements"}
        strict = client.get("/fhir/$export?_type=Basic", headers=ASYNC)
        assert_outcome(strict, 400, "not-supported")


def test_an_account_without_the_kind_of_export_is_refused(source: FakeSource) -> None:
    client, exports = make_client(source, kinds=frozenset({ExportKind.PATIENT}))
    with exports:
        assert_outcome(client.get("/fhir/$export", headers=ASYNC), 403, "forbidden")
        manifest(client, kick_off(client, "/fhir/Patient/$export"))
    assert source.calls == [(ExportKind.PATIENT, None, None)]


def test_close_stops_running_exports_and_deletes_everything(source: FakeSource) -> None:
    source.gate = threading.Event()
    client, exports = make_client(source)
    status_path = kick_off(client)
    root = exports.root
    assert Path(root).exists()
    source.gate.set()
    exports.close()
    assert not root.exists()
    assert client.get(status_path).status_code == 404
