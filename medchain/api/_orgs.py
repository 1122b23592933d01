"""Read-only endpoints on who may act: the consortium's organisations, their staff,
proposals to change the membership, an account's credentials with their history, and
the organisations that verified a patient's identity."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._deps import Chain
from medchain.api._errors import ApiError
from medchain.api._lookups import on_chain, registered_patient
from medchain.api._models import Address, Encoded, FromChain, Hex, Name
from medchain.node import ChainQueries

MAX_PROPOSAL_ID = 2**64 - 1
"""Proposal ids: 8 bytes, big-endian, in the state's keys."""
ORG_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
"""An organisation's id: a slug of 2 to 32 characters."""

AddressPath = Annotated[str, Path(description="Account address, bech32 (mc1...).")]
OrgIdPath = Annotated[
    str, Path(description="Organisation id: 2 to 32 of a-z, 0-9 and '-', not starting with '-'.")
]


# -- models ---------------------------------------------------------------------------


class OrganisationModel(FromChain):
    """A member of the consortium, or a former one (`member` false)."""

    org_id: str
    name: str
    kind: Name = Field(description="hospital, clinic, research, insurer, regulator, ...")
    account: Address = Field(
        description="The organisation's own account: receives research copies, answers "
        "emergency requests."
    )
    admins: list[Address] = Field(description="Who acts for it; sorted by address bytes.")
    member: bool
    joined_height: int
    left_height: int = Field(description="0 while a member.")
    encoded: Encoded


class OrganisationsModel(BaseModel):
    organisations: list[OrganisationModel] = Field(description="Members and former, by id.")


class OrganisationSpecModel(FromChain):
    """What a proposal would make an organisation (a LEAVE names only `org_id`)."""

    org_id: str
    name: str
    kind: Name
    admins: list[Hex] = Field(description="The admins' Ed25519 public keys.")
    public_key: Hex = Field(description="The organisation account's Ed25519 key.")
    encryption_key: Hex = Field(description="The organisation account's X25519 key.")


class ApprovalModel(FromChain):
    org_id: str
    admin: Address
    height: int
    tx_id: Hex


class ProposalModel(FromChain):
    proposal_id: int
    action: Name = Field(description="join, update or leave.")
    spec: OrganisationSpecModel
    reason: str
    proposer: Address
    proposer_org: str
    created_height: int
    lapses_height: int = Field(description="An open proposal lapses after this height.")
    approvals: list[ApprovalModel] = Field(description="In order of arrival.")
    approvals_needed: int = Field(
        description="Approvals that pass it: two thirds (rounded up) of today's members."
    )
    status: Name = Field(description="open, passed or lapsed.")
    decided_height: int = Field(description="0 while open.")
    encoded: Encoded


class ProposalsModel(BaseModel):
    proposals: list[ProposalModel] = Field(description="By id, open and decided.")


class CredentialEventModel(FromChain):
    seq: int
    height: int
    time_ms: int
    tx_id: Hex
    action: str = Field(description="issued, renewed, suspended, reinstated or revoked.")
    actor: Address = Field(description="The issuing organisation's admin who acted.")
    expires_ms: int
    reason: str
    encoded: Encoded


class CredentialModel(FromChain):
    subject: Address
    org_id: str = Field(description="The issuing organisation.")
    role: Name = Field(description="doctor, nurse, pharmacist, researcher, device, ...")
    name: str = Field(description="The display name the organisation vouches for.")
    issued_height: int
    expires_ms: int = Field(description="Block time it expires at; 0 for never.")
    status: Name = Field(description="active, suspended or revoked.")
    history_count: int
    encoded: Encoded


class CredentialWithHistoryModel(CredentialModel):
    history: list[CredentialEventModel] = Field(description="Oldest first.")


class CredentialsModel(BaseModel):
    subject: Address
    credentials: list[CredentialWithHistoryModel] = Field(
        description="One per issuing organisation, by organisation id; empty for an "
        "account no organisation credentialed."
    )


class StaffModel(BaseModel):
    org_id: str
    staff: list[CredentialModel] = Field(description="Every credential it issued.")


class AttestationModel(FromChain):
    patient: Address
    org_id: str
    attester: Address = Field(description="The organisation's admin who attested.")
    height: int
    tx_id: Hex
    encoded: Encoded


class AttestationsModel(BaseModel):
    patient: Address
    verified: bool = Field(
        description="Whether a current member organisation attests the patient's identity "
        "(what an anonymous scope with `verified_only` asks of its ring)."
    )
    attestations: list[AttestationModel]


# -- lookups ------------------------------------------------------------------------


def parse_org_id(text: str) -> str:
    """A well-formed organisation id; 422 for anything else."""
    if not ORG_ID.fullmatch(text):
        raise ApiError(
            422,
            "invalid_org_id",
            f"{text[:40]!r} is not an organisation id: 2 to 32 of a-z, 0-9 and '-', not "
            "starting with '-' (GET /v1/orgs lists them)",
        )
    return text


def _organisation(chain: ChainQueries, text: str) -> contracts.Organisation:
    wanted = parse_org_id(text)
    return on_chain(
        chain.organisation(wanted),
        contracts.UnknownOrganisation.code,
        f"no organisation {wanted!r} on this chain; GET /v1/orgs lists them",
    )


def _proposal_model(proposal: contracts.Proposal, members: int) -> ProposalModel:
    return ProposalModel.of(proposal, approvals_needed=contracts.approval_threshold(members))


def _member_count(chain: ChainQueries) -> int:
    return sum(1 for org in chain.organisations() if org.member)


# -- routes -------------------------------------------------------------------------

router = APIRouter(prefix="/v1", tags=["organisations"])


@router.get("/orgs", summary="The consortium's organisations")
async def organisations(chain: Chain) -> OrganisationsModel:
    return OrganisationsModel.model_validate({"organisations": chain.organisations()})


@router.get("/orgs/{org_id}", summary="One organisation")
async def organisation(org_id: OrgIdPath, chain: Chain) -> OrganisationModel:
    return OrganisationModel.of(_organisation(chain, org_id))


@router.get("/orgs/{org_id}/staff", summary="The credentials an organisation issued")
async def staff(org_id: OrgIdPath, chain: Chain) -> StaffModel:
    found = _organisation(chain, org_id)
    return StaffModel.model_validate(
        {"org_id": found.org_id, "staff": chain.staff_of(found.org_id)}
    )


@router.get("/proposals", summary="Proposals to change the membership")
async def proposals(chain: Chain) -> ProposalsModel:
    members = _member_count(chain)
    found = [_proposal_model(p, members) for p in chain.proposals()]
    return ProposalsModel(proposals=found)


@router.get("/proposals/{proposal_id}", summary="One proposal, its approvals and outcome")
async def proposal(
    proposal_id: Annotated[int, Path(ge=0, le=MAX_PROPOSAL_ID)], chain: Chain
) -> ProposalModel:
    found = on_chain(
        chain.proposal(proposal_id),
        "unknown_proposal",
        f"no proposal {proposal_id} on this chain; GET /v1/proposals lists them",
    )
    return _proposal_model(found, _member_count(chain))


@router.get("/accounts/{address}/credentials", summary="An account's credentials and history")
async def credentials(address: AddressPath, chain: Chain) -> CredentialsModel:
    subject = parse.address(address)
    rows = [
        CredentialWithHistoryModel.of(c, history=chain.credential_history(subject, c.org_id))
        for c in chain.credentials_of(subject)
    ]
    return CredentialsModel.model_validate({"subject": subject, "credentials": rows})


@router.get("/patients/{address}/attestations", summary="Who verified a patient's identity")
async def attestations(address: AddressPath, chain: Chain) -> AttestationsModel:
    patient = registered_patient(chain, address)
    return AttestationsModel.model_validate(
        {
            "patient": patient,
            "verified": chain.is_verified_patient(patient),
            "attestations": chain.attestations_of(patient),
        }
    )
