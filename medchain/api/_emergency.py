"""Read-only endpoints of break-glass: a patient's emergency policy, the openings of a
patient's set and by an organisation's staff, one request with its answers, what an
organisation has yet to answer, and a patient's notifications. Every share, partial
and key in them is sealed; what they reveal is metadata (docs/PRIVACY.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from medchain import app as contracts
from medchain.api._deps import Chain
from medchain.api._errors import ApiError
from medchain.api._lookups import on_chain, registered_patient
from medchain.api._models import Address, Encoded, FromChain, Hex
from medchain.api._orgs import OrgIdPath, _organisation

AddressPath = Annotated[str, Path(description="Account address, bech32 (mc1...).")]
RequestIdPath = Annotated[
    str, Path(description=f"Request id: {2 * contracts.REQUEST_ID_SIZE} hex characters.")
]


class SealedShareModel(FromChain):
    org_id: str
    commitment: Hex = Field(description="The share's public commitment s_i·G.")
    sealed: Hex = Field(description="The share, sealed to the organisation's account.")


class EmergencyPolicyModel(FromChain):
    patient: Address
    enabled: bool
    resource_types: list[str] = Field(description="The types that form the emergency set.")
    public_key: Hex = Field(description="The emergency key's point E = s·G.")
    threshold: int = Field(description="Organisations that must answer to open the set.")
    shares: list[SealedShareModel] = Field(description="One per member organisation.")
    set_height: int
    set_by: Address = Field(description="The patient, or the proxy who set it for them.")
    encoded: Encoded


class EmergencyRequestModel(FromChain):
    """An opening of a patient's emergency set by a credentialed clinician."""

    request_id: Hex
    patient: Address
    clinician: Address
    clinician_org: str = Field(description="Whose credential let the clinician open it.")
    reason: str
    opened_height: int
    opened_ms: int
    expires_ms: int = Field(description="Block time after which no organisation may answer.")
    threshold: int
    answered: list[str] = Field(description="The organisations that answered, sorted.")
    encoded: Encoded


class EmergencyRequestsModel(BaseModel):
    requests: list[EmergencyRequestModel] = Field(description="Oldest first.")


class EmergencyAnswerModel(FromChain):
    request_id: Hex
    org_id: str
    index: int = Field(description="The organisation's share index.")
    account: Address
    height: int
    tx_id: Hex
    encoded: Encoded


class EmergencyAnswersModel(BaseModel):
    request_id: Hex
    answers: list[EmergencyAnswerModel] = Field(description="By share index.")


class NotificationModel(FromChain):
    """Something the patient and their proxies must see: a break-glass on their data."""

    seq: int
    height: int
    time_ms: int
    tx_id: Hex
    kind: str = Field(description="emergency.opened or emergency.answered.")
    request_id: Hex
    actor: Address
    org_id: str
    detail: str = Field(description="The reason given, or how many have answered.")
    encoded: Encoded


class NotificationsModel(BaseModel):
    patient: Address
    notifications: list[NotificationModel] = Field(description="Oldest first.")


def _request_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != contracts.REQUEST_ID_SIZE:
        raise ApiError(
            422,
            "invalid_request_id",
            f"{text[:80]!r} is not a request id: {2 * contracts.REQUEST_ID_SIZE} hex "
            "characters (GET /v1/patients/{address}/emergency-requests lists them)",
        )
    return raw


def _requests(found: list[contracts.EmergencyRequest]) -> EmergencyRequestsModel:
    return EmergencyRequestsModel(requests=[EmergencyRequestModel.of(r) for r in found])


router = APIRouter(prefix="/v1", tags=["break-glass"])


@router.get("/patients/{address}/emergency-policy", summary="A patient's emergency policy")
async def emergency_policy(address: AddressPath, chain: Chain) -> EmergencyPolicyModel:
    patient = registered_patient(chain, address)
    policy = on_chain(
        chain.emergency_policy(patient),
        "no_emergency_policy",
        "this patient has set no emergency policy (`medchain emergency policy`)",
    )
    return EmergencyPolicyModel.of(policy)


@router.get("/patients/{address}/emergency-requests", summary="The openings of a patient's set")
async def patient_requests(address: AddressPath, chain: Chain) -> EmergencyRequestsModel:
    return _requests(chain.emergency_requests_of(registered_patient(chain, address)))


@router.get("/patients/{address}/notifications", summary="A patient's notifications")
async def notifications(address: AddressPath, chain: Chain) -> NotificationsModel:
    patient = registered_patient(chain, address)
    found = [NotificationModel.of(n) for n in chain.notifications_of(patient)]
    return NotificationsModel.model_validate({"patient": patient, "notifications": found})


@router.get(
    "/orgs/{org_id}/emergency-requests", summary="Every break-glass by an organisation's staff"
)
async def org_requests(org_id: OrgIdPath, chain: Chain) -> EmergencyRequestsModel:
    return _requests(chain.emergency_requests_by_org(_organisation(chain, org_id).org_id))


@router.get(
    "/orgs/{org_id}/emergency-requests/pending",
    summary="The requests an organisation has yet to answer",
)
async def pending_requests(org_id: OrgIdPath, chain: Chain) -> EmergencyRequestsModel:
    return _requests(chain.pending_emergency_requests(_organisation(chain, org_id).org_id))


@router.get("/emergency-requests/{request_id}", summary="One break-glass request")
async def emergency_request(request_id: RequestIdPath, chain: Chain) -> EmergencyRequestModel:
    found = on_chain(
        chain.emergency_request(_request_id(request_id)),
        "unknown_emergency_request",
        f"no emergency request {request_id} on this chain; check the id",
    )
    return EmergencyRequestModel.of(found)


@router.get("/emergency-requests/{request_id}/answers", summary="The organisations' sealed answers")
async def emergency_answers(request_id: RequestIdPath, chain: Chain) -> EmergencyAnswersModel:
    raw = _request_id(request_id)
    on_chain(
        chain.emergency_request(raw),
        "unknown_emergency_request",
        f"no emergency request {request_id} on this chain; check the id",
    )
    answers = [EmergencyAnswerModel.of(a) for a in chain.emergency_answers(raw)]
    return EmergencyAnswersModel.model_validate({"request_id": raw, "answers": answers})
