"""The chain's answers on who may act (organisations, proposals, credentials and their
history, attestations) are the contracts' state, read the same way by every holder."""

from __future__ import annotations

from medchain.app import (
    ApproveArgs,
    AttestArgs,
    CredentialActionArgs,
    CredentialRole,
    CredentialStatus,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposalStatus,
    ProposeArgs,
    RegisterArgs,
    Role,
)
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from tests.api.harness import Org, credential, make_chain, submit_as

HOSPITAL = Org.generate("st-mary")
CLINIC = Org.generate("riverside", OrgKind.CLINIC)
INSTITUTE = Org.generate("inst", OrgKind.RESEARCH)


def _chain() -> LocalChain:
    return make_chain(orgs=(HOSPITAL, CLINIC, INSTITUTE))


def test_organisations_are_listed_by_id_with_their_accounts_and_admins() -> None:
    chain = _chain()
    assert [org.org_id for org in chain.organisations()] == ["inst", "riverside", "st-mary"]
    found = chain.organisation("st-mary")
    assert found is not None and found.member and found.kind is OrgKind.HOSPITAL
    assert found.account == HOSPITAL.account.address
    assert found.admins == (HOSPITAL.admin.address,)
    assert chain.organisation("nobody") is None


def test_credentials_their_history_and_an_organisations_staff() -> None:
    chain = _chain()
    doctor = AccountKeys.generate()
    credential(chain, HOSPITAL, doctor.address, CredentialRole.DOCTOR, "Dr. Ana Ruiz")
    suspend = CredentialActionArgs(doctor.address, "leave")
    submit_as(chain, HOSPITAL.admin, "credentials.suspend", suspend)
    (held,) = chain.credentials_of(doctor.address)
    assert (held.org_id, held.role, held.name) == ("st-mary", CredentialRole.DOCTOR, "Dr. Ana Ruiz")
    assert held.status is CredentialStatus.SUSPENDED
    history = chain.credential_history(doctor.address, "st-mary")
    assert [event.action for event in history] == ["issued", "suspended"]
    assert history[-1].actor == HOSPITAL.admin.address and history[-1].reason == "leave"
    assert chain.credential_history(doctor.address, "riverside") == []
    assert chain.staff_of("st-mary") == [held] and chain.staff_of("riverside") == []
    assert chain.credentials_of(AccountKeys.generate().address) == []


def test_proposals_with_their_approvals_and_outcome() -> None:
    chain = _chain()
    newcomer = Org.generate("north-lab", OrgKind.LABORATORY)
    spec = OrganisationSpec(
        newcomer.org_id,
        "North Lab",
        OrgKind.LABORATORY,
        (newcomer.admin.public_key,),
        newcomer.account.public_key,
        newcomer.account.encryption_public_key,
    )
    submit_as(
        chain, HOSPITAL.admin, "orgs.propose", ProposeArgs(ProposalAction.JOIN, spec, "a lab")
    )
    (proposal,) = chain.proposals()
    assert proposal.status is ProposalStatus.OPEN and proposal.proposer_org == "st-mary"
    assert chain.proposal(proposal.proposal_id) == proposal
    assert chain.proposal(proposal.proposal_id + 1) is None
    submit_as(chain, CLINIC.admin, "orgs.approve", ApproveArgs(proposal.proposal_id))
    passed = chain.proposal(proposal.proposal_id)
    assert passed is not None and passed.status is ProposalStatus.PASSED
    assert [a.org_id for a in passed.approvals] == ["st-mary", "riverside"]
    assert chain.organisation("north-lab") is not None


def test_attestations_of_a_patient_and_whether_they_are_verified() -> None:
    chain = _chain()
    patient, other = AccountKeys.generate(), AccountKeys.generate()
    for keys in (patient, other):
        args = RegisterArgs(Role.PATIENT, "", keys.encryption_public_key)
        submit_as(chain, keys, "registry.register", args)
    submit_as(chain, CLINIC.admin, "orgs.attest", AttestArgs(patient.address))
    (attestation,) = chain.attestations_of(patient.address)
    assert (attestation.org_id, attestation.attester) == ("riverside", CLINIC.admin.address)
    assert chain.is_verified_patient(patient.address)
    assert chain.attestations_of(other.address) == []
    assert not chain.is_verified_patient(other.address)
