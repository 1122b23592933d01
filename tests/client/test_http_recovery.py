"""Key recovery through the SDK over HttpChain, against the node's API in process: the
kit and shares are uploaded with the policy's transaction, guardians find and approve
the request, the new key completes and reads the old record."""

from __future__ import annotations

from medchain.api import create_api
from medchain.app import RecoveryStatus, Role
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys
from tests.api.harness import FakeNode, SyncASGITransport, make_chain

NOTE = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "blood pressure"},
    "subject": {"reference": "Patient/example"},
}


def test_a_recovery_over_http() -> None:
    local = make_chain(recovery_min_delay_ms=1)
    remote = HttpChain("http://node", transport=SyncASGITransport(create_api(FakeNode(local))))

    def client(register: bool = True) -> MedchainClient:
        made = MedchainClient(AccountKeys.generate(), remote)
        if register:
            made.register(Role.PATIENT, "")
        return made

    patient, guardians = client(), [client() for _ in range(3)]
    record_id = patient.put_record(patient.address, NOTE)
    assert patient.set_up_recovery([g.address for g in guardians], 2, delay_ms=1).ok
    policy = remote.recovery_policy(patient.address)
    assert policy == local.recovery_policy(patient.address) and policy is not None
    assert all(local.blobs.has(s.cid) for s in policy.shares) and local.blobs.has(policy.kit_cid)

    new = client(register=False)
    request_id = new.request_recovery(patient.address)
    assert remote.recovery_request(request_id) == local.recovery_request(request_id)
    for guardian in guardians[:2]:
        (asked,) = guardian.recovery_requests_to_approve()
        assert asked.request_id == request_id
        assert guardian.approve_recovery(request_id).ok
    restored = new.complete_recovery(request_id)
    assert restored.address == patient.address
    assert new.read_record(record_id) == NOTE
    assert remote.recovery_requests_of(patient.address) == local.recovery_requests_of(
        patient.address
    )
    assert remote.recovery_requests_of(patient.address)[0].status is RecoveryStatus.COMPLETED
    assert remote.guardian_recovery_requests(guardians[0].address) == []
