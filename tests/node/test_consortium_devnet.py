"""The consortium on real node processes: an organisation joins and leaves by
proposal, each approval a signed transaction over HTTP to a different node, and its
doctor's credential stops working at the height it left; and break-glass, a patient's
emergency set opened by a clinician once three of the four organisations answered.
Marked slow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from medchain.app import (
    CredentialRole,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposalStatus,
)
from medchain.client import (
    EmergencyNotOpen,
    HttpChain,
    MedchainClient,
    NotAReader,
    answer_args,
    answer_pending,
    leaving,
    open_emergency,
    organisation_spec,
    proposal_id_of,
    read_emergency_set,
    set_up_emergency_policy,
)
from medchain.crypto import AccountKeys, load_keys
from medchain.types import ChainParams, MedchainError
from tests.node.netharness import PATIENCE_S, LiveNet, live_net, wait_for

pytestmark = pytest.mark.slow

VALIDATORS = ["node0", "node1", "node2", "node3"]
FOUNDERS = ("st-mary", "riverside", "northlab", "civic-insure")
WINDOW_MS = 90_000
"""How long an emergency request may be answered: long enough for three answers on a
busy machine, short enough to wait out."""
CONDITION = {
    "resourceType": "Condition",
    "code": {"text": "Asthma"},
    "subject": {"reference": "Patient/p"},
}


class Consortium:
    """Clients of the founding organisations' admins and of new accounts, each on the
    node it is given (so approvals reach the chain through different nodes)."""

    def __init__(self, net: LiveNet, stack: ExitStack) -> None:
        self.net = net
        self.stack = stack

    def client(self, keys: AccountKeys, node: str) -> MedchainClient:
        chain = self.stack.enter_context(HttpChain(self.net.url(node)))
        return MedchainClient(keys, chain)

    def admin(self, org_id: str, node: str) -> MedchainClient:
        return self.client(load_keys(self.net.devnet.admin_key(org_id)), node)

    def propose(self, admin: MedchainClient, action: ProposalAction, spec: OrganisationSpec) -> int:
        receipt = admin.propose_organisation(action, spec, f"{action.value} by test")
        proposal_id = proposal_id_of(receipt)
        assert proposal_id is not None
        return proposal_id


@pytest.fixture
def consortium(tmp_path: Path) -> Iterator[Consortium]:
    params = ChainParams(consensus="afbft", emergency_window_ms=WINDOW_MS)
    with live_net(tmp_path, consensus="afbft", params=params) as net, ExitStack() as stack:
        net.start()
        yield Consortium(net, stack)


def test_an_organisation_joins_credentials_a_doctor_and_leaves(consortium: Consortium) -> None:
    net = consortium.net
    harbour_admin, harbour_account, doctor_keys, patient_keys = net.fund(4)
    spec = organisation_spec("harbour", "Harbour Clinic", OrgKind.CLINIC, [harbour_admin],
                             harbour_account)  # fmt: skip
    st_mary = consortium.admin("st-mary", "node0")
    joining = consortium.propose(st_mary, ProposalAction.JOIN, spec)
    consortium.admin("riverside", "node1").approve_proposal(joining)
    pending = st_mary.chain.proposal(joining)
    assert pending is not None and pending.status is ProposalStatus.OPEN
    consortium.admin("northlab", "node2").approve_proposal(joining)  # 3 of 4: passed
    observer = consortium.client(patient_keys, "node3")
    wait_for(
        lambda: (o := observer.chain.organisation("harbour")) is not None and o.member,
        PATIENCE_S,
        "harbour to be a member on node3",
    )

    observer.register(name="Pat")
    doctor = consortium.client(doctor_keys, "node1")
    doctor.register(name="Dr Ruiz")
    consortium.client(harbour_admin, "node2").issue_credential(
        doctor.address, CredentialRole.DOCTOR, "Dr Ruiz, Harbour Clinic"
    )
    written = doctor.put_record(observer.address, CONDITION)
    assert observer.read_record(written)["code"]["text"] == "Asthma"

    leaving_id = consortium.propose(st_mary, ProposalAction.LEAVE, leaving("harbour"))
    for org_id, node in (("riverside", "node1"), ("northlab", "node2"), ("civic-insure", "node3")):
        consortium.admin(org_id, node).approve_proposal(leaving_id)  # 4 of 5
    left = doctor.chain.organisation("harbour")
    assert left is not None and not left.member and left.left_height > 0
    with pytest.raises(MedchainError) as refused:
        doctor.put_record(observer.address, CONDITION)
    assert refused.value.code == "not_credentialed"
    assert "left" in refused.value.message
    assert len(observer.chain.patient_records(observer.address)) == 1

    top = min(net.height(n) for n in VALIDATORS)
    net.wait_height(VALIDATORS, top)
    net.assert_agreement(VALIDATORS, top)


def test_break_glass_opens_with_three_of_four_and_expires(consortium: Consortium) -> None:
    net = consortium.net
    patient_keys, clinician_keys = net.fund(2)
    patient = consortium.client(patient_keys, "node0")
    patient.register(name="Pat")
    set_up_emergency_policy(patient)  # split among the 4 organisations, 3 needed
    before = patient.put_record(patient.address, CONDITION)
    clinician = consortium.client(clinician_keys, "node1")
    clinician.register(name="Dr Ortiz")
    consortium.admin("riverside", "node2").issue_credential(
        clinician.address, CredentialRole.DOCTOR, "Dr Ortiz, emergency"
    )
    request_id = open_emergency(clinician, patient.address, "unconscious after a fall")
    after = patient.put_record(patient.address, CONDITION)  # not in the snapshot

    accounts = {
        org_id: consortium.client(load_keys(net.devnet.org_key(org_id)), node)
        for org_id, node in zip(FOUNDERS, VALIDATORS, strict=True)
    }
    for org_id in ("st-mary", "northlab"):
        assert answer_pending(accounts[org_id]) == [request_id]
    with pytest.raises(EmergencyNotOpen, match="2 of the 3"):
        read_emergency_set(clinician, request_id)
    assert answer_pending(accounts["riverside"]) == [request_id]
    opened = read_emergency_set(clinician, request_id)
    assert [r.record_id for r in opened] == [before]
    assert opened[0].resource["code"]["text"] == "Asthma"
    with pytest.raises(NotAReader):
        clinician.read_record(after)

    chain = clinician.chain
    assert isinstance(chain, HttpChain)
    request = chain.emergency_request(request_id)
    assert request is not None
    wait_for(lambda: time.time() * 1000 > request.expires_ms + 1_000, 2 * PATIENCE_S, "expiry")
    late = accounts["civic-insure"]
    args = answer_args(late.keys, request, "civic-insure", clinician.keys.encryption_public_key)
    with pytest.raises(MedchainError) as refused:
        late.send("emergency.answer", args)
    assert refused.value.code == "emergency_error"
    kinds = [n.kind for n in chain.notifications_of(patient.address)]
    assert kinds == ["emergency.opened", *["emergency.answered"] * 3]

    top = min(net.height(n) for n in VALIDATORS)
    net.wait_height(VALIDATORS, top)
    net.assert_agreement(VALIDATORS, top)
