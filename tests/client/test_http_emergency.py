"""Break-glass through the SDK over HttpChain, against the node's API in process: the
patient sets up a policy, writes, a clinician opens, three of four organisations'
accounts answer, the clinician reads the set; and a node without the routes is named."""

from __future__ import annotations

import httpx
import pytest

from medchain.api import create_api
from medchain.app import Role
from medchain.client import (
    EmergencyChain,
    EmergencyNotOpen,
    HttpChain,
    MedchainClient,
    NodeError,
    answer_pending,
    open_emergency,
    read_emergency_set,
    set_up_emergency_policy,
)
from medchain.crypto import AccountKeys
from tests.api.harness import FakeNode, Org, SyncASGITransport, clinician, make_chain

ORGS = tuple(Org.generate(f"org-{name}") for name in ("a", "b", "c", "d"))
ALLERGY = {
    "resourceType": "AllergyIntolerance",
    "patient": {"reference": "Patient/example"},
    "code": {"text": "penicillin"},
}


def test_the_break_glass_flow_over_http() -> None:
    local = make_chain(orgs=ORGS)
    remote = HttpChain("http://node", transport=SyncASGITransport(create_api(FakeNode(local))))
    assert isinstance(remote, EmergencyChain)
    assert remote.member_organisations() == local.member_organisations()
    patient = MedchainClient(AccountKeys.generate(), remote)
    patient.register(Role.PATIENT, "Jane Roe")
    assert set_up_emergency_policy(patient).ok
    assert remote.emergency_policy(patient.address) == local.emergency_policy(patient.address)
    allergy = patient.put_record(patient.address, ALLERGY)
    doctor = clinician(remote, org=ORGS[0])

    request_id = open_emergency(doctor, patient.address, "unconscious, no ID card")
    assert remote.emergency_request(request_id) == local.emergency_request(request_id)
    assert remote.emergency_requests_of(patient.address) == local.emergency_requests_of(
        patient.address
    )
    by_staff = remote.emergency_requests_by_org(ORGS[0].org_id)
    assert [r.request_id for r in by_staff] == [request_id]
    assert [r.request_id for r in remote.pending_emergency_requests(ORGS[1].org_id)] == [request_id]
    for org in ORGS[:2]:
        assert answer_pending(MedchainClient(org.account, remote)) == [request_id]
    with pytest.raises(EmergencyNotOpen, match="2 of the 3"):
        read_emergency_set(doctor, request_id)
    assert answer_pending(MedchainClient(ORGS[2].account, remote)) == [request_id]
    as_doctor = remote.reading_as(doctor.keys)
    assert as_doctor.emergency_answers(request_id) == local.emergency_answers(request_id)

    (found,) = read_emergency_set(doctor, request_id)
    assert found.record_id == allergy and found.resource == patient.read_record(allergy)
    notes = remote.notifications_of(patient.address)
    assert notes == local.notifications_of(patient.address)
    assert [n.kind for n in notes] == ["emergency.opened"] + ["emergency.answered"] * 3


def test_unknown_things_read_as_nothing_over_http() -> None:
    local = make_chain(orgs=ORGS)
    remote = HttpChain("http://node", transport=SyncASGITransport(create_api(FakeNode(local))))
    nobody = AccountKeys.generate().address
    assert remote.emergency_policy(nobody) is None
    assert remote.emergency_request(b"\x00" * 16) is None
    assert remote.emergency_request(b"short") is None
    assert remote.reading_as(AccountKeys.generate()).emergency_answers(b"\x00" * 16) == []
    assert remote.emergency_requests_of(nobody) == []
    assert remote.notifications_of(nobody) == []
    assert remote.pending_emergency_requests("no-such-org") == []
    assert remote.emergency_requests_by_org("no-such-org") == []


def test_a_node_without_the_routes_is_named_not_read_as_no_policy() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        error = {"code": "not_found", "message": "Not Found"}
        return httpx.Response(404, json={"error": error})

    chain = HttpChain("http://node", transport=httpx.MockTransport(answer))
    with pytest.raises(NodeError, match="upgrade the node") as refused:
        chain.emergency_policy(b"\x01" * 20)
    assert refused.value.code == "endpoint_missing"
    with pytest.raises(NodeError, match="upgrade the node"):
        chain.pending_emergency_requests("org-a")
