"""The break-glass routes, read through the SDK's HttpChain as a clinician, the
organisations' accounts and a patient do: a policy, an opening, pending requests,
sealed answers, the set opened once two of three organisations answered, and the
patient's notifications; 404 for an unknown request, 422 for a malformed id."""

from __future__ import annotations

import httpx
import pytest

from medchain.api import create_api
from medchain.app import CredentialRole, EmergencyRequest, OrgKind, Role
from medchain.client import (
    EmergencyNotOpen,
    HttpChain,
    MedchainClient,
    answer_pending,
    open_emergency,
    read_emergency_set,
    set_up_emergency_policy,
)
from medchain.crypto import AccountKeys, format_address
from medchain.types import decode
from tests.api.harness import FakeNode, Org, SyncASGITransport, credential, make_chain

HOSPITAL = Org.generate("st-mary")
CLINIC = Org.generate("riverside", OrgKind.CLINIC)
INSTITUTE = Org.generate("inst", OrgKind.RESEARCH)
CONDITION = {
    "resourceType": "Condition",
    "code": {"text": "Epilepsy"},
    "subject": {"reference": "Patient/p"},
}


@pytest.fixture
def transport() -> SyncASGITransport:
    chain = make_chain(orgs=(HOSPITAL, CLINIC, INSTITUTE))
    return SyncASGITransport(create_api(FakeNode(chain)))


@pytest.fixture
def http(transport: SyncASGITransport) -> HttpChain:
    return HttpChain("http://node", transport=transport)


def _client(http: HttpChain, keys: AccountKeys | None = None) -> MedchainClient:
    return MedchainClient(keys or AccountKeys.generate(), http)


def test_an_opening_read_over_http_once_two_of_three_answer(http: HttpChain) -> None:
    patient, doctor = _client(http), _client(http)
    patient.register(Role.PATIENT, "Pat")
    set_up_emergency_policy(patient)
    policy = http.emergency_policy(patient.address)
    assert policy is not None and policy.threshold == 2 and len(policy.shares) == 3
    patient.put_record(patient.address, CONDITION)
    doctor.register(Role.PATIENT, "Dr. Ruiz")
    credential(http, HOSPITAL, doctor.address, CredentialRole.DOCTOR, "Dr. Ruiz")
    request_id = open_emergency(doctor, patient.address, "seizure in the street")

    request = http.emergency_request(request_id)
    assert request is not None and request.reason == "seizure in the street"
    assert http.emergency_requests_by_org("st-mary") == [request]
    assert http.emergency_requests_of(patient.address) == [request]
    assert http.pending_emergency_requests("riverside") == [request]
    assert answer_pending(_client(http, HOSPITAL.account)) == [request_id]
    assert http.pending_emergency_requests("st-mary") == []
    assert [a.org_id for a in http.emergency_answers(request_id)] == ["st-mary"]
    with pytest.raises(EmergencyNotOpen, match="1 of the 2"):
        read_emergency_set(doctor, request_id)
    answer_pending(_client(http, CLINIC.account))
    (opened,) = read_emergency_set(doctor, request_id)
    assert opened.resource["code"]["text"] == "Epilepsy"
    kinds = [n.kind for n in http.notifications_of(patient.address)]
    assert kinds == ["emergency.opened", "emergency.answered", "emergency.answered"]


def test_the_routes_models_and_their_404_and_422(
    http: HttpChain, transport: SyncASGITransport
) -> None:
    patient, doctor = _client(http), _client(http)
    patient.register(Role.PATIENT, "Pat")
    api = httpx.Client(transport=transport, base_url="http://node")
    address = format_address(patient.address)
    missing = api.get(f"/v1/patients/{address}/emergency-policy")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "no_emergency_policy"
    set_up_emergency_policy(patient)
    patient.put_record(patient.address, CONDITION)
    doctor.register(Role.PATIENT, "Dr. Ruiz")
    credential(http, CLINIC, doctor.address, CredentialRole.NURSE, "Nurse Ruiz")
    request_id = open_emergency(doctor, patient.address, "collapse")
    body = api.get(f"/v1/emergency-requests/{request_id.hex()}").json()
    assert body["clinician_org"] == "riverside" and body["answered"] == []
    assert body["patient"] == address and body["threshold"] == 2
    assert decode(EmergencyRequest, bytes.fromhex(body["encoded"])).request_id == request_id
    unknown = api.get(f"/v1/emergency-requests/{'00' * 16}")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_emergency_request"
    for bad in ("zz", "00" * 15):
        assert api.get(f"/v1/emergency-requests/{bad}/answers").status_code == 422
    assert api.get("/v1/orgs/nobody/emergency-requests").status_code == 404
    notes = api.get(f"/v1/patients/{address}/notifications").json()["notifications"]
    assert [n["kind"] for n in notes] == ["emergency.opened"] and notes[0]["detail"] == "collapse"
