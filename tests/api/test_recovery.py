"""The key-recovery endpoints: a patient's policy and requests, one request, a
guardian's open requests; chain objects carry their canonical encoding; unknown is
404, malformed 400."""

from __future__ import annotations

import pytest

from medchain.app import RecoveryPolicy, RecoveryRequest, Role
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys, format_address
from medchain.node import LocalChain
from medchain.types import decode
from tests.api.harness import FakeNode, api_client, make_chain, ok


class Scene:
    """A patient with three guardians and a recovery request one guardian approved."""

    def __init__(self) -> None:
        self.chain: LocalChain = make_chain(recovery_min_delay_ms=1)
        self.patient = self.client()
        self.guardians = sorted((self.client() for _ in range(3)), key=lambda c: c.address)
        self.patient.set_up_recovery([g.address for g in self.guardians], 2, delay_ms=1)
        self.request_id = self.client(register=False).request_recovery(self.patient.address)
        self.guardians[0].approve_recovery(self.request_id)
        self.api = api_client(FakeNode(self.chain))
        self.who = format_address(self.patient.address)

    def client(self, register: bool = True) -> MedchainClient:
        made = MedchainClient(AccountKeys.generate(), self.chain)
        if register:
            made.register(Role.PATIENT, "")
        return made


@pytest.fixture(scope="module")
def scene() -> Scene:
    return Scene()


def test_a_patients_policy_and_requests(scene: Scene) -> None:
    shown = ok(scene.api.get(f"/v1/patients/{scene.who}/recovery"))
    policy = shown["policy"]
    assert decode(RecoveryPolicy, bytes.fromhex(policy["encoded"])) == (
        scene.chain.recovery_policy(scene.patient.address)
    )
    assert policy["guardians"] == [format_address(g.address) for g in scene.guardians]
    assert policy["threshold"] == 2 and policy["delay_ms"] == 1
    (request,) = shown["requests"]
    assert request["request_id"] == scene.request_id.hex() and request["status"] == "open"
    assert [a["guardian"] for a in request["approvals"]] == [who(scene.guardians[0])]


def who(client: MedchainClient) -> str:
    return format_address(client.address)


def test_one_request(scene: Scene) -> None:
    shown = ok(scene.api.get(f"/v1/recovery/{scene.request_id.hex()}"))
    assert decode(RecoveryRequest, bytes.fromhex(shown["encoded"])) == (
        scene.chain.recovery_request(scene.request_id)
    )
    assert shown["ready_ms"] == 0


def test_what_each_guardian_is_asked_to_approve(scene: Scene) -> None:
    for guardian in scene.guardians:
        shown = ok(scene.api.get(f"/v1/guardians/{who(guardian)}/recovery-requests"))
        assert [r["request_id"] for r in shown["requests"]] == [scene.request_id.hex()]
    stranger = format_address(AccountKeys.generate().address)
    assert ok(scene.api.get(f"/v1/guardians/{stranger}/recovery-requests"))["requests"] == []


def test_unknown_and_malformed(scene: Scene) -> None:
    missing = scene.api.get(f"/v1/recovery/{'00' * 16}")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "unknown_recovery_request"
    assert scene.api.get("/v1/recovery/zz").status_code == 400
    stranger = format_address(AccountKeys.generate().address)
    assert scene.api.get(f"/v1/patients/{stranger}/recovery").status_code == 404
    no_policy = scene.guardians[1].address
    shown = ok(scene.api.get(f"/v1/patients/{format_address(no_policy)}/recovery"))
    assert shown == {"patient": format_address(no_policy), "policy": None, "requests": []}
