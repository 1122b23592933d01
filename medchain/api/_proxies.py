"""Read-only endpoints of the proxies contract: a patient's proxies, the patients an
account acts for, and whom a record written for a patient must be wrapped for."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from medchain.api import _parse as parse
from medchain.api._deps import Chain
from medchain.api._lookups import registered_patient
from medchain.api._models import Address, Encoded, FromChain

AddressPath = Annotated[str, Path(description="Account address, bech32 (mc1...).")]


class ProxyModel(FromChain):
    """An account that acts for a patient within its scopes until its expiry."""

    patient: Address
    proxy: Address
    relation: str = Field(description="parent, legal or carer.")
    scopes: list[str] = Field(description="Of read, grant, devices, write; sorted.")
    expires_ms: int = Field(description="Block time it stops acting at; 0 = never.")
    added_height: int
    encoded: Encoded


class PatientProxiesModel(BaseModel):
    patient: Address
    proxies: list[ProxyModel] = Field(description="Expired ones too; by proxy address.")


class ProxyPatientsModel(BaseModel):
    proxy: Address
    patients: list[ProxyModel] = Field(description="By patient address.")


class RequiredReadersModel(BaseModel):
    """Whom a record written for the patient must wrap its key for, besides the patient
    (their current `read` proxies), as of the latest block."""

    patient: Address
    readers: list[Address] = Field(description="Sorted by address bytes.")


router = APIRouter(prefix="/v1", tags=["proxies"])


@router.get("/patients/{address}/proxies", summary="A patient's proxies")
async def patient_proxies(address: AddressPath, chain: Chain) -> PatientProxiesModel:
    raw = registered_patient(chain, address)
    proxies = [ProxyModel.of(p) for p in chain.proxies_of(raw)]
    return PatientProxiesModel.model_validate({"patient": raw, "proxies": proxies})


@router.get("/proxies/{address}/patients", summary="The patients an account acts for")
async def proxy_patients(address: AddressPath, chain: Chain) -> ProxyPatientsModel:
    raw = parse.address(address, "proxy")
    patients = [ProxyModel.of(p) for p in chain.patients_of(raw)]
    return ProxyPatientsModel.model_validate({"proxy": raw, "patients": patients})


@router.get("/patients/{address}/required-readers", summary="A patient's required readers")
async def required_readers(address: AddressPath, chain: Chain) -> RequiredReadersModel:
    raw = registered_patient(chain, address)
    readers = chain.required_readers(raw)
    return RequiredReadersModel.model_validate({"patient": raw, "readers": readers})
