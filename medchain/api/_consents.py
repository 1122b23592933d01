"""Read-only endpoints of standing consents: a patient's consents (or those a record
written now by an author, of a type, would fall under) and one consent by id."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from medchain.api import _parse as parse
from medchain.api._deps import Chain
from medchain.api._errors import ApiError
from medchain.api._lookups import on_chain, registered_patient
from medchain.api._models import Address, Encoded, FromChain, Name

AddressPath = Annotated[str, Path(description="Account address, bech32 (mc1...).")]
MAX_CONSENT_ID = 2**64 - 1
"""Consent ids: 8 bytes, big-endian, in the state's keys."""


class ConsentModel(FromChain):
    """A patient's standing consent: `reader` reads their records of these types and
    codes, by these authors or organisations (none named: all), until `expires_ms`."""

    consent_id: int
    patient: Address
    reader: Address
    resource_types: list[str] = Field(description="FHIR resource types; empty = all.")
    codes: list[str] = Field(description="`system|code`; empty = all (the writer checks).")
    authors: list[Address] = Field(description="Empty = any author.")
    organisations: list[str] = Field(description="The authors' credentialing org ids.")
    purposes: list[Name] = Field(description="HL7 PurposeOfUse codes.")
    expires_ms: int = Field(description="Block time it ends at; 0 = never.")
    granted_height: int
    granted_by: Address = Field(description="The patient, or their `grant` proxy.")
    revoked_height: int = Field(description="0 while not revoked.")
    encoded: Encoded


class PatientConsentsModel(BaseModel):
    patient: Address
    consents: list[ConsentModel] = Field(
        description="By id: all of them, or (given author and resource_type) those in "
        "force that such a record falls under, codes aside."
    )


router = APIRouter(prefix="/v1", tags=["consents"])


@router.get("/patients/{address}/consents", summary="A patient's standing consents")
async def patient_consents(
    address: AddressPath,
    chain: Chain,
    author: Annotated[str | None, Query(description="Only consents covering this author.")] = None,
    resource_type: Annotated[
        str | None, Query(description="Only consents covering this FHIR resource type.")
    ] = None,
) -> PatientConsentsModel:
    raw = registered_patient(chain, address)
    if author is None and resource_type is None:
        found = chain.consents_of(raw)
    elif author is None or resource_type is None:
        raise ApiError(
            400,
            "invalid_argument",
            "give both author and resource_type to list the consents a record falls under, "
            "or neither to list them all",
        )
    else:
        found = chain.covering_consents(raw, parse.address(author, "author"), resource_type)
    consents = [ConsentModel.of(c) for c in found]
    return PatientConsentsModel.model_validate({"patient": raw, "consents": consents})


@router.get("/consents/{consent_id}", summary="One standing consent")
async def consent(
    consent_id: Annotated[int, Path(ge=1, le=MAX_CONSENT_ID)], chain: Chain
) -> ConsentModel:
    found = on_chain(
        chain.consent(consent_id),
        "unknown_consent",
        f"no standing consent {consent_id} on this chain; "
        "GET /v1/patients/{address}/consents lists a patient's",
    )
    return ConsentModel.of(found)
