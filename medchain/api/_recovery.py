"""Read-only endpoints of key recovery: a patient's recovery policy and requests, one
request, and the open requests a guardian is asked to approve. All of it is what the
chain's state shows every validator: guardians, threshold, delay and the CIDs of
sealed shares (whose contents only each guardian opens)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._deps import Chain
from medchain.api._lookups import on_chain, registered_patient
from medchain.api._models import Address, Encoded, FromChain, Hex

AddressPath = Annotated[str, Path(description="The account's address, bech32 (mc1...).")]
RecoveryIdPath = Annotated[
    str, Path(description=f"Request id: {2 * contracts.RECOVERY_ID_SIZE} hex characters.")
]


class ShareRefModel(FromChain):
    guardian: Address
    cid: str = Field(description="The guardian's share, sealed to the guardian.")
    hash: Hex


class RecoveryPolicyModel(FromChain):
    patient: Address
    guardians: list[Address] = Field(description="Sorted.")
    threshold: int = Field(description="Guardian approvals a recovery needs.")
    delay_ms: int = Field(description="Waiting period after the threshold, block time.")
    kit_cid: str = Field(description="The recovery kit, sealed under the recovery secret.")
    kit_hash: Hex
    shares: list[ShareRefModel]
    set_height: int
    encoded: Encoded


class RecoveryApprovalModel(FromChain):
    guardian: Address
    cid: str = Field(description="The guardian's share re-sealed to the new key.")
    hash: Hex
    height: int


class RecoveryRequestModel(FromChain):
    request_id: Hex
    patient: Address
    new_public_key: Hex
    new_encryption_key: Hex
    new_ring_key: Hex
    requested_height: int
    requested_ms: int
    approvals: list[RecoveryApprovalModel] = Field(description="Sorted by guardian.")
    ready_ms: int = Field(description="0 until the threshold; then the earliest completion.")
    status: str = Field(description="open, cancelled or completed.")
    closed_height: int
    encoded: Encoded


class PatientRecoveryModel(BaseModel):
    patient: Address
    policy: RecoveryPolicyModel | None = Field(description="None when the patient has none.")
    requests: list[RecoveryRequestModel] = Field(description="Oldest first.")


class GuardianRequestsModel(BaseModel):
    guardian: Address
    requests: list[RecoveryRequestModel] = Field(description="Open ones, oldest first.")


router = APIRouter(prefix="/v1", tags=["recovery"])


@router.get("/patients/{address}/recovery", summary="A patient's recovery policy and requests")
async def patient_recovery(address: AddressPath, chain: Chain) -> PatientRecoveryModel:
    patient = registered_patient(chain, address)
    policy = chain.recovery_policy(patient)
    requests = [RecoveryRequestModel.of(r) for r in chain.recovery_requests_of(patient)]
    return PatientRecoveryModel.model_validate(
        {
            "patient": patient,
            "policy": None if policy is None else RecoveryPolicyModel.of(policy),
            "requests": requests,
        }
    )


@router.get("/recovery/{request_id}", summary="One recovery request")
async def recovery_request(request_id: RecoveryIdPath, chain: Chain) -> RecoveryRequestModel:
    raw = parse.hex_bytes(request_id, "a recovery request id", contracts.RECOVERY_ID_SIZE)
    found = on_chain(
        chain.recovery_request(raw),
        "unknown_recovery_request",
        f"no recovery request {raw.hex()} on this chain; "
        "GET /v1/patients/{address}/recovery lists a patient's",
    )
    return RecoveryRequestModel.of(found)


@router.get(
    "/guardians/{address}/recovery-requests", summary="Open requests a guardian may approve"
)
async def guardian_requests(address: AddressPath, chain: Chain) -> GuardianRequestsModel:
    guardian = parse.address(address, "guardian")
    found = [RecoveryRequestModel.of(r) for r in chain.guardian_recovery_requests(guardian)]
    return GuardianRequestsModel.model_validate({"guardian": guardian, "requests": found})
