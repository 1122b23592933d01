"""The consortium on real node processes: an organisation joins and leaves by
proposal, each approval a signed transaction over HTTP to a different node, and its
doctor's credential stops working at the height it left. Marked slow."""

from __future__ import annotations

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
from medchain.client import HttpChain, MedchainClient, leaving, organisation_spec, proposal_id_of
from medchain.crypto import AccountKeys, load_keys
from medchain.types import MedchainError
from tests.node.netharness import PATIENCE_S, LiveNet, live_net, wait_for

pytestmark = pytest.mark.slow

VALIDATORS = ["node0", "node1", "node2", "node3"]
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
    with live_net(tmp_path, consensus="afbft") as net, ExitStack() as stack:
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
