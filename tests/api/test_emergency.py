"""The break-glass endpoints: a patient's policy, requests by patient, by organisation
and pending for one, a request's answers, a patient's notifications; each chain object
carries its canonical encoding; unknown is 404, malformed 400 or 422."""

from __future__ import annotations

import httpx
import pytest

from medchain.app import (
    EmergencyAnswer,
    EmergencyPolicy,
    EmergencyRequest,
    Notification,
    PurposeOfUse,
    Role,
)
from medchain.client import (
    MedchainClient,
    answer_pending,
    open_emergency,
    set_up_emergency_policy,
)
from medchain.crypto import AccountKeys, format_address
from medchain.node import LocalChain
from medchain.types import decode
from tests.api.harness import FakeNode, Org, api_client, clinician, make_chain, ok, read_as

ORGS = tuple(Org.generate(f"org-{name}") for name in ("a", "b", "c"))
ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "patient": {"reference": "Patient/example"},
    "code": {"text": "penicillin"},
}


def _refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code


class Scene:
    """Three organisations; a patient with a policy and an allergy; a clinician of the
    first organisation who opened the set; the second organisation answered."""

    def __init__(self) -> None:
        self.chain: LocalChain = make_chain(orgs=ORGS)
        self.patient = MedchainClient(AccountKeys.generate(), self.chain)
        self.patient.register(Role.PATIENT, "")
        assert set_up_emergency_policy(self.patient).ok
        self.patient.put_record(self.patient.address, ALLERGY)
        self.doctor = clinician(self.chain, org=ORGS[0])
        self.request_id = open_emergency(self.doctor, self.patient.address, "unconscious")
        assert answer_pending(MedchainClient(ORGS[1].account, self.chain)) == [self.request_id]
        self.api = api_client(FakeNode(self.chain))
        self.who = format_address(self.patient.address)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


def test_the_policy_and_the_requests_on_a_patient(scene: Scene) -> None:
    policy = ok(scene.api.get(f"/v1/patients/{scene.who}/emergency-policy"))
    assert decode(EmergencyPolicy, bytes.fromhex(policy["encoded"])) == (
        scene.chain.emergency_policy(scene.patient.address)
    )
    assert policy["enabled"] is True and policy["threshold"] == 2
    assert [s["org_id"] for s in policy["shares"]] == [o.org_id for o in ORGS]

    listed = ok(scene.api.get(f"/v1/patients/{scene.who}/emergency-requests"))
    (shown,) = listed["requests"]
    assert shown["request_id"] == scene.request_id.hex() and shown["reason"] == "unconscious"
    assert shown["clinician"] == format_address(scene.doctor.address)
    assert shown["answered"] == [ORGS[1].org_id] and len(shown["items"]) == 1
    assert decode(EmergencyRequest, bytes.fromhex(shown["encoded"])) == (
        scene.chain.emergency_request(scene.request_id)
    )
    one = ok(scene.api.get(f"/v1/emergency/requests/{scene.request_id.hex()}"))
    assert one == shown


def test_the_answers_and_what_is_pending(scene: Scene) -> None:
    path = f"/v1/emergency/requests/{scene.request_id.hex()}/answers"
    _refused(scene.api.get(path), 401, "read_unsigned")
    _refused(scene.api.get(path, auth=read_as(AccountKeys.generate())), 403, "read_not_authorised")
    answers = ok(scene.api.get(path, auth=read_as(scene.doctor, PurposeOfUse.EMERGENCY_TREATMENT)))
    assert ok(scene.api.get(path, auth=read_as(scene.patient))) == answers
    assert answers["request_id"] == scene.request_id.hex()
    decoded = [decode(EmergencyAnswer, bytes.fromhex(a["encoded"])) for a in answers["answers"]]
    assert decoded == scene.chain.emergency_answers(scene.request_id)
    assert [(a.org_id, a.index) for a in decoded] == [(ORGS[1].org_id, 2)]

    for org, expected in ((ORGS[0], [scene.request_id.hex()]), (ORGS[1], [])):
        pending = ok(scene.api.get("/v1/emergency/pending", params={"org": org.org_id}))
        assert pending["org_id"] == org.org_id
        assert [r["request_id"] for r in pending["requests"]] == expected
    by_staff = ok(scene.api.get(f"/v1/orgs/{ORGS[0].org_id}/emergency-requests"))
    assert [r["request_id"] for r in by_staff["requests"]] == [scene.request_id.hex()]
    assert ok(scene.api.get(f"/v1/orgs/{ORGS[1].org_id}/emergency-requests"))["requests"] == []


def test_the_patients_notifications(scene: Scene) -> None:
    notes = ok(scene.api.get(f"/v1/patients/{scene.who}/notifications"))
    assert notes["patient"] == scene.who
    assert [n["kind"] for n in notes["notifications"]] == [
        "emergency.opened",
        "emergency.answered",
    ]
    assert notes["notifications"][0]["detail"] == "unconscious"
    decoded = [decode(Notification, bytes.fromhex(n["encoded"])) for n in notes["notifications"]]
    assert decoded == scene.chain.notifications_of(scene.patient.address)


def test_unknown_and_malformed_are_refused(scene: Scene) -> None:
    api = scene.api
    nobody = format_address(AccountKeys.generate().address)
    for route in ("emergency-policy", "emergency-requests", "notifications"):
        _refused(api.get(f"/v1/patients/{nobody}/{route}"), 404, "not_registered")
        _refused(api.get(f"/v1/patients/mc1nonsense/{route}"), 400, "invalid_address")
    _refused(
        api.get(f"/v1/patients/{format_address(scene.doctor.address)}/emergency-policy"),
        404,
        "no_emergency_policy",
    )
    _refused(api.get(f"/v1/emergency/requests/{'00' * 16}"), 404, "unknown_emergency_request")
    _refused(
        api.get(f"/v1/emergency/requests/{'00' * 16}/answers", auth=read_as(scene.doctor)),
        404,
        "unknown_emergency_request",
    )
    _refused(api.get("/v1/emergency/requests/abc"), 400, "invalid_hex")
    _refused(
        api.get("/v1/emergency/pending", params={"org": "no-such-org"}), 404, "unknown_organisation"
    )
    _refused(api.get("/v1/emergency/pending", params={"org": "Bad Org"}), 422, "invalid_org_id")
    _refused(api.get("/v1/orgs/no-such-org/emergency-requests"), 404, "unknown_organisation")
    assert api.get("/v1/emergency/pending").status_code == 422


def test_the_routes_are_documented_under_their_tag(scene: Scene) -> None:
    schema = ok(scene.api.get("/openapi.json"))
    assert "emergency" in [t["name"] for t in schema["tags"]]
    paths = schema["paths"]
    for path in (
        "/v1/patients/{address}/emergency-policy",
        "/v1/emergency/requests/{request_id}",
        "/v1/emergency/requests/{request_id}/answers",
        "/v1/emergency/pending",
        "/v1/patients/{address}/emergency-requests",
        "/v1/orgs/{org_id}/emergency-requests",
        "/v1/patients/{address}/notifications",
    ):
        assert paths[path]["get"]["tags"] == ["emergency"]
