"""An organisation admin's SDK: proposals, credentials and attestations, with their
reads, the same on an in-process chain and on a node over HTTP."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from medchain.api import create_api
from medchain.app import (
    CredentialRole,
    CredentialStatus,
    OrgKind,
    ProposalAction,
    ProposalStatus,
    Role,
    UnknownOrganisation,
)
from medchain.client import (
    ChainBackend,
    HttpChain,
    MedchainClient,
    leaving,
    organisation_spec,
    proposal_id_of,
)
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from medchain.types import TxFailed
from tests.api.harness import FakeNode, Org, SyncASGITransport, make_chain


def _local(chain: LocalChain) -> ChainBackend:
    return chain


def _http(chain: LocalChain) -> ChainBackend:
    transport = SyncASGITransport(create_api(FakeNode(chain)))
    return HttpChain("http://node", transport=transport)


@pytest.fixture(params=[_local, _http], ids=["local", "http"])
def backend(request: pytest.FixtureRequest) -> Callable[[LocalChain], ChainBackend]:
    chosen: Callable[[LocalChain], ChainBackend] = request.param
    return chosen


def _admin(backend: ChainBackend, org: Org) -> MedchainClient:
    return MedchainClient(org.admin, backend)


def test_organisation_spec_reads_the_accounts_public_keys() -> None:
    admins, account = [AccountKeys.generate(), AccountKeys.generate()], AccountKeys.generate()
    spec = organisation_spec("north-lab", "North Lab", OrgKind.LABORATORY, admins, account)
    assert spec.admins == (admins[0].public_key, admins[1].public_key)
    assert (spec.public_key, spec.encryption_key) == (
        account.public_key,
        account.encryption_public_key,
    )
    same = organisation_spec("north-lab", "North Lab", OrgKind.LABORATORY, spec.admins, account)
    assert same == spec
    assert leaving("north-lab").org_id == "north-lab"


def test_a_proposal_passes_with_two_thirds_and_the_new_organisation_leaves_again(
    backend: Callable[[LocalChain], ChainBackend],
) -> None:
    hospital, clinic, institute = (
        Org.generate("st-mary"),
        Org.generate("riverside", OrgKind.CLINIC),
        Org.generate("inst", OrgKind.RESEARCH),
    )
    chain = backend(make_chain(orgs=(hospital, clinic, institute)))
    proposer, approver = _admin(chain, hospital), _admin(chain, clinic)
    assert proposer.my_organisation() == chain.organisation("st-mary")
    newcomer = AccountKeys.generate()
    spec = organisation_spec(
        "north-lab", "North Lab", OrgKind.LABORATORY, [newcomer], AccountKeys.generate()
    )
    receipt = proposer.propose_organisation(ProposalAction.JOIN, spec, "a lab joins")
    proposal_id = proposal_id_of(receipt)
    assert proposal_id is not None
    (proposal,) = proposer.proposals()
    assert proposal.proposal_id == proposal_id and proposal.status is ProposalStatus.OPEN
    approver.approve_proposal(proposal_id)
    passed = chain.proposal(proposal_id)
    assert passed is not None and passed.status is ProposalStatus.PASSED
    assert proposer.organisation("north-lab").member
    leave = proposer.propose_organisation(ProposalAction.LEAVE, leaving("north-lab"), "gone")
    left_id = proposal_id_of(leave)
    assert left_id is not None
    approver.approve_proposal(left_id)  # two of four members: not yet two thirds
    assert proposer.organisation("north-lab").member
    _admin(chain, institute).approve_proposal(left_id)
    assert not proposer.organisation("north-lab").member
    with pytest.raises(UnknownOrganisation, match="org list"):
        proposer.organisation("nobody")


def test_credentials_are_issued_suspended_reinstated_and_revoked(
    backend: Callable[[LocalChain], ChainBackend],
) -> None:
    hospital = Org.generate("st-mary")
    chain = backend(make_chain(orgs=(hospital,)))
    admin = _admin(chain, hospital)
    doctor = MedchainClient(AccountKeys.generate(), chain)
    admin.issue_credential(doctor.address, CredentialRole.DOCTOR, "Dr. Ana Ruiz")
    admin.suspend_credential(doctor.address, "on leave")
    admin.reinstate_credential(doctor.address, "back")
    (held,) = doctor.credentials_of()
    assert (held.org_id, held.status) == ("st-mary", CredentialStatus.ACTIVE)
    admin.revoke_credential(doctor.address, "left")
    assert admin.staff_of("st-mary")[0].status is CredentialStatus.REVOKED
    history = chain.credential_history(doctor.address, "st-mary")
    assert [e.action for e in history] == ["issued", "suspended", "reinstated", "revoked"]
    with pytest.raises(TxFailed) as refused:  # a revoked credential is final
        admin.issue_credential(doctor.address, CredentialRole.DOCTOR, "Dr. Ana Ruiz")
    assert refused.value.code == "invalid_argument"
    with pytest.raises(TxFailed) as refused:
        doctor.issue_credential(doctor.address, CredentialRole.DOCTOR, "Dr. Me")
    assert refused.value.code == "not_an_admin"


def test_a_patient_is_attested_and_unattested(
    backend: Callable[[LocalChain], ChainBackend],
) -> None:
    hospital = Org.generate("st-mary")
    chain = backend(make_chain(orgs=(hospital,)))
    admin = _admin(chain, hospital)
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "Jane Roe")
    assert not chain.is_verified_patient(patient.address)
    admin.attest_patient(patient.address)
    assert [a.org_id for a in chain.attestations_of(patient.address)] == ["st-mary"]
    assert chain.is_verified_patient(patient.address)
    admin.unattest_patient(patient.address)
    assert chain.attestations_of(patient.address) == []
    assert not chain.is_verified_patient(patient.address)
    assert chain.attestations_of(AccountKeys.generate().address) == []
