"""Read-only endpoints of break-glass: a patient's emergency policy, the emergency
requests opened on a patient or by an organisation's staff, the sealed answers to a
request, what an organisation's account has yet to answer, and a patient's
notifications. An opening's clinician, reason and time are public audit by design."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._deps import Chain, Service
from medchain.api._lookups import on_chain, registered_patient
from medchain.api._models import Address, Encoded, FromChain, Hex
from medchain.api._orgs import OrgIdPath, _organisation
from medchain.api._reads import READ_RESPONSES, SignedRead, allowed, disclose
from medchain.node import ChainQueries, DisclosureKind

AddressPath = Annotated[str, Path(description="The patient's address, bech32 (mc1...).")]
RequestIdPath = Annotated[
    str, Path(description=f"Request id: {2 * contracts.REQUEST_ID_SIZE} hex characters.")
]


# -- models ---------------------------------------------------------------------------


class SealedShareModel(FromChain):
    """One organisation's share of the emergency key, sealed to its account."""

    org_id: str
    commitment: Hex = Field(description="s_i·G, a ristretto255 point the answers are checked by.")
    sealed: Hex = Field(description="The share, HPKE-sealed to the organisation's account.")


class EmergencyPolicyModel(FromChain):
    """Whether break-glass is on for the patient, over which resource types, and the
    emergency key's point with its shares."""

    patient: Address
    enabled: bool
    resource_types: list[str] = Field(description="The emergency set's FHIR types, sorted.")
    public_key: Hex = Field(description="E = s·G; record versions in the set wrap to it.")
    threshold: int = Field(description="Organisations whose answers open the set.")
    shares: list[SealedShareModel] = Field(description="Share i (from 1) is the i-th.")
    set_height: int
    set_by: Address = Field(description="The patient, or the proxy who set it for them.")
    encoded: Encoded


class SnapshotItemModel(FromChain):
    record_id: Hex
    version: int
    ephemeral: Hex = Field(description="R = r·G of the version's emergency wrap.")
    sealed_key: Hex


class EmergencyRequestModel(FromChain):
    """A break-glass: who opened it, why, when, and the set as it stood then."""

    request_id: Hex
    patient: Address
    clinician: Address
    clinician_org: str = Field(description="The organisation whose credential let it open.")
    reason: str
    opened_height: int
    opened_ms: int
    expires_ms: int = Field(description="Block time after which no organisation may answer.")
    threshold: int
    public_key: Hex
    shares: list[SealedShareModel] = Field(description="The policy's shares at the opening.")
    items: list[SnapshotItemModel] = Field(description="The snapshotted record versions.")
    answered: list[str] = Field(description="Org ids that answered, sorted.")
    encoded: Encoded


class EmergencyAnswerModel(FromChain):
    request_id: Hex
    org_id: str
    index: int = Field(description="The organisation's share index, from 1.")
    account: Address
    height: int
    tx_id: Hex
    wrapped_key: Hex = Field(description="The answer's key, sealed to the clinician.")
    sealed_partials: Hex = Field(description="Partial decryptions and proofs, sealed.")
    encoded: Encoded


class EmergencyAnswersModel(BaseModel):
    request_id: Hex
    answers: list[EmergencyAnswerModel] = Field(description="By share index.")


class PatientRequestsModel(BaseModel):
    patient: Address
    requests: list[EmergencyRequestModel] = Field(description="Oldest first.")


class OrgRequestsModel(BaseModel):
    org_id: str
    requests: list[EmergencyRequestModel] = Field(description="Oldest first.")


class NotificationModel(FromChain):
    seq: int
    height: int
    time_ms: int
    tx_id: Hex
    kind: str = Field(description="emergency.opened or emergency.answered.")
    request_id: Hex
    actor: Address = Field(description="The clinician who opened, or the answering account.")
    org_id: str
    detail: str = Field(description="The opening's reason.")
    encoded: Encoded


class NotificationsModel(BaseModel):
    patient: Address
    notifications: list[NotificationModel] = Field(description="Oldest first.")


# -- lookups ------------------------------------------------------------------------


def _request(chain: ChainQueries, text: str) -> contracts.EmergencyRequest:
    request_id = parse.hex_bytes(text, "a request id", contracts.REQUEST_ID_SIZE)
    return on_chain(
        chain.emergency_request(request_id),
        "unknown_emergency_request",
        f"no emergency request {request_id.hex()} on this chain; "
        "GET /v1/patients/{address}/emergency-requests lists a patient's",
    )


def _requests(found: list[contracts.EmergencyRequest]) -> list[EmergencyRequestModel]:
    return [EmergencyRequestModel.of(r) for r in found]


# -- routes -------------------------------------------------------------------------

router = APIRouter(prefix="/v1", tags=["emergency"])


@router.get("/patients/{address}/emergency-policy", summary="A patient's emergency policy")
async def emergency_policy(address: AddressPath, chain: Chain) -> EmergencyPolicyModel:
    patient = registered_patient(chain, address)
    policy = on_chain(
        chain.emergency_policy(patient),
        "no_emergency_policy",
        "this patient never set an emergency policy: their client sets it up "
        "(`medchain register` does by default)",
    )
    return EmergencyPolicyModel.of(policy)


@router.get("/emergency/requests/{request_id}", summary="One emergency request")
async def emergency_request(request_id: RequestIdPath, chain: Chain) -> EmergencyRequestModel:
    return EmergencyRequestModel.of(_request(chain, request_id))


@router.get(
    "/emergency/requests/{request_id}/answers",
    summary="The answers to a request (signed read)",
    responses=READ_RESPONSES,
)
async def emergency_answers(
    request_id: RequestIdPath, service: Service, reader: SignedRead
) -> EmergencyAnswersModel:
    """The organisations' sealed answers, to the clinician who opened the request, the
    patient and their read proxy."""
    found = _request(service.chain, request_id)
    state = service.chain.ledger.state
    access = allowed(
        lambda: contracts.emergency_answers_access(state, found, reader.account, reader.now_ms)
    )
    answers = [
        EmergencyAnswerModel.of(a) for a in service.chain.emergency_answers(found.request_id)
    ]
    detail = f"answers to emergency request {found.request_id.hex()}"
    disclose(service, reader, access, DisclosureKind.WRAPS, found.patient, detail=detail)
    return EmergencyAnswersModel.model_validate(
        {"request_id": found.request_id, "answers": answers}
    )


@router.get("/emergency/pending", summary="Open requests an organisation has to answer")
async def pending(
    chain: Chain,
    org: Annotated[str, Query(description="The organisation's id.")],
) -> OrgRequestsModel:
    org_id = _organisation(chain, org).org_id
    found = _requests(chain.pending_emergency_requests(org_id))
    return OrgRequestsModel(org_id=org_id, requests=found)


@router.get("/patients/{address}/emergency-requests", summary="Break-glass on a patient")
async def patient_requests(address: AddressPath, chain: Chain) -> PatientRequestsModel:
    patient = registered_patient(chain, address)
    found = _requests(chain.emergency_requests_of(patient))
    return PatientRequestsModel.model_validate({"patient": patient, "requests": found})


@router.get("/orgs/{org_id}/emergency-requests", summary="Break-glass by an organisation's staff")
async def org_requests(org_id: OrgIdPath, chain: Chain) -> OrgRequestsModel:
    wanted = _organisation(chain, org_id).org_id
    return OrgRequestsModel(
        org_id=wanted, requests=_requests(chain.emergency_requests_by_org(wanted))
    )


@router.get("/patients/{address}/notifications", summary="A patient's notifications")
async def notifications(address: AddressPath, chain: Chain) -> NotificationsModel:
    patient = registered_patient(chain, address)
    found = [NotificationModel.of(n) for n in chain.notifications_of(patient)]
    return NotificationsModel.model_validate({"patient": patient, "notifications": found})
