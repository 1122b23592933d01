"""Read-only endpoints of the devices contract: devices (with the state in force at the
latest height, since a penalty restriction lapses by itself), their audit trails, a
patient's devices, guardians, vitals readers and bundles of readings over a time range,
gateways and committed batches of readings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from medchain import app as contracts
from medchain.api import _parse as parse
from medchain.api._deps import Chain, Service
from medchain.api._errors import ApiError
from medchain.api._lookups import on_chain, registered_patient
from medchain.api._models import Address, Encoded, FromChain, Hex, Name, address_of
from medchain.api._reads import READ_RESPONSES, SignedRead, allowed, disclose
from medchain.node import ChainQueries, DisclosureKind
from medchain.types import DecodeError

AddressPath = Annotated[str, Path(description="Account address, bech32 (mc1...).")]
BatchIdPath = Annotated[str, Path(description="Batch id: 32 hex characters.")]

MAX_DEVICE_LOOKUP = 1_000
"""Most devices one POST /v1/devices/lookup may name; HttpChain.devices splits longer
lists into several requests."""


# -- models ---------------------------------------------------------------------------


class DeviceLabelModel(BaseModel):
    """That a device has a label, and whom it is sealed for; never its text, which only
    they open (`medchain devices show --key`)."""

    sealed: bool = Field(
        description="False for a label an earlier medchain stored in clear (its bytes are "
        "in `encoded`); `medchain devices relabel` seals it."
    )
    readers: list[Address] = Field(
        description="Who can open it: the patient and their guardians when it was written."
    )


def device_label_model(stored: bytes) -> DeviceLabelModel | None:
    try:
        label = contracts.sealed_label(stored)
    except DecodeError:
        return DeviceLabelModel(sealed=False, readers=[])
    if label is None:
        return None
    return DeviceLabelModel.model_validate({"sealed": True, "readers": label.readers})


class DeviceModel(FromChain):
    """A registered device; its id is the address of its Ed25519 key. Beside the state
    stored on chain it shows the state in force at `height`, and of its sealed label
    only whom it is sealed for."""

    device: Address
    key: Hex = Field(description="The device's Ed25519 public key.")
    patient: Address
    kind: Name
    label: DeviceLabelModel | None = Field(description="Null when the device has no label.")
    state: Name = Field(
        description="The state in force at `height` (a penalty restriction past its end "
        "reads as active)."
    )
    stored_state: Name = Field(description="The state as last written on chain.")
    height: int = Field(description="The height `state` is read at: the latest committed.")
    restricted_until: int = Field(
        description="Last height of a penalty restriction; 0 for none (or one set by hand)."
    )
    strikes: int = Field(description="Offences gateways reported.")
    owner_may_lift: bool = Field(
        description="Whether the patient or a guardian may re-activate it (only from a "
        "restriction they set)."
    )
    registered_by: Address
    registered_height: int
    reason: str = Field(description="Why it is in its state ('' while it never left active).")
    evidence_hash: Hex = Field(description="SHA-256 of the last change's evidence, '' if none.")
    audit_count: int
    encoded: Encoded


def device_model(device: contracts.Device, height: int) -> DeviceModel:
    return DeviceModel.of(
        device,
        label=device_label_model(device.label),
        state=device.state_at(height),
        stored_state=device.state,
        height=height,
        registered_height=device.height,
    )


class DeviceLookupBody(BaseModel):
    devices: list[str] = Field(
        description=f"Device addresses, bech32 (mc1...), at most {MAX_DEVICE_LOOKUP}."
    )


class DeviceLookupModel(BaseModel):
    """Many devices read from one committed state, so their `state` is the state in
    force at one `height`."""

    height: int = Field(description="The latest committed height, every device's `height`.")
    devices: list[DeviceModel | None] = Field(
        description="One per address asked for, in order; null where no device is registered."
    )


class RecipientsLookupBody(BaseModel):
    patients: list[str] = Field(
        description=f"Patient addresses, bech32 (mc1...), at most {MAX_DEVICE_LOOKUP}."
    )


class RecipientModel(BaseModel):
    address: Address
    encryption_key: Hex = Field(description="X25519 public key; empty if it has none.")


class PatientRecipientsModel(BaseModel):
    patient: Address
    recipients: list[RecipientModel] | None = Field(
        description="The patient, guardians and vitals readers, by address; null when "
        "the address is not a registered patient."
    )


class RecipientsLookupModel(BaseModel):
    patients: list[PatientRecipientsModel] = Field(description="One per address, in order.")


class DeviceAuditEntryModel(FromChain):
    seq: int
    height: int
    time_ms: int
    tx_id: Hex
    action: Name = Field(description="registered, relabelled, state_changed or strike.")
    actor: Address
    state: Name = Field(description="The device's stored state after the entry.")
    restricted_until: int
    strikes: int
    reason: str = Field(description="The reason given, or the offence of a strike.")
    evidence_hash: Hex
    on_behalf: Address = Field(
        description="The patient, when the actor acted as their devices proxy; '' otherwise."
    )
    lapsed_at: int = Field(
        description="For a penalty restriction that ended before the next entry (or by "
        "`height`, for the last): the height from which the device was active again, a "
        "change of state no transaction writes; 0 otherwise."
    )
    encoded: Encoded


class DeviceAuditModel(BaseModel):
    device: Address
    height: int = Field(description="The chain's height the lapses are read at.")
    entries: list[DeviceAuditEntryModel] = Field(description="Oldest first.")


def device_audit_model(
    device: bytes, entries: list[contracts.DeviceAuditEntry], height: int
) -> DeviceAuditModel:
    lapses = contracts.restriction_lapses(entries, height)
    return DeviceAuditModel.model_validate(
        {
            "device": device,
            "height": height,
            "entries": [
                DeviceAuditEntryModel.of(e, lapsed_at=lapsed)
                for e, lapsed in zip(entries, lapses, strict=True)
            ],
        }
    )


class PatientDevicesModel(BaseModel):
    patient: Address
    devices: list[DeviceModel] = Field(description="In registration order.")


class GuardiansModel(BaseModel):
    """Accounts the patient lets manage their devices (no access to records)."""

    patient: Address
    guardians: list[Address] = Field(description="Sorted by address bytes.")


class GatewayModel(FromChain):
    address: Address
    label: str
    registered_by: Address = Field(description="The hospital that registered (and may revoke) it.")
    height: int = Field(description="Height it was registered at.")
    active: bool = Field(description="False once revoked (revoked gateways stay revoked).")
    batch_count: int
    org_id: str = Field(description="The member organisation it reports for.")
    encoded: Encoded


class BundleModel(FromChain):
    """One patient's readings of one UTC day in the batch."""

    patient: Address
    cid: str = Field(description="CID of the patient's encrypted bundle (GET /v1/blobs/{cid}).")
    ciphertext_hash: Hex
    count: int = Field(description="Readings in the bundle.")
    time_from_ms: int = Field(description="Time of its first reading (ms since the epoch).")
    time_to_ms: int = Field(description="Time of its last reading, the same UTC day.")
    devices: list[Address] = Field(description="Devices whose readings it holds, sorted.")


class BatchModel(FromChain):
    """A gateway's committed batch of readings; any reading is proven by its Merkle
    path to `root`. The header (root, count, gateway, height) is in the committed
    state; the bundles come from this node's index of its blocks."""

    batch_id: Hex
    gateway: Address
    root: Hex = Field(description="RFC 6962 Merkle root of the batch's sorted reading ids.")
    count: int
    bundles: list[BundleModel] = Field(description="Empty while `bundles_listed` is false.")
    bundles_listed: bool = Field(
        description="False on a node that joined from a snapshot above the batch's height "
        "and has not fetched its block yet; its bundles are listed once it has."
    )
    height: int
    tx_id: Hex
    encoded: Encoded


class VitalsEntryModel(FromChain):
    """A bundle of the patient's readings, as their vitals index lists it. Its blob
    (GET /v1/blobs/{cid}) opens only for the readers it was sealed for at commit time."""

    batch_id: Hex
    height: int = Field(description="Height the batch was committed at.")
    root: Hex = Field(description="The batch's Merkle root.")
    cid: str
    ciphertext_hash: Hex
    count: int = Field(description="Readings in the bundle.")
    time_from_ms: int
    time_to_ms: int
    devices: list[Address]
    encoded: Encoded


class VitalsModel(BaseModel):
    patient: Address
    from_ms: int
    to_ms: int
    device: Address | None = Field(description="The device asked for, if any.")
    entries: list[VitalsEntryModel] = Field(
        description="Bundles overlapping the range, by first reading time, then height."
    )
    complete_from: int = Field(
        description="The lowest height whose batches this node lists: 0 when it holds every "
        "block; a node that joined from a snapshot lists batches from the snapshot's height, "
        "and older ones as it fetches their blocks."
    )


class VitalsReadersModel(BaseModel):
    """Accounts the patient shares their device readings with (sealed for them at
    commit time, from when they were added)."""

    patient: Address
    readers: list[Address] = Field(description="Sorted by address bytes.")


# -- routes ---------------------------------------------------------------------------


router = APIRouter(prefix="/v1", tags=["devices"])


def _device(chain: ChainQueries, address: str) -> contracts.Device:
    raw = parse.address(address, "device")
    return on_chain(
        chain.device(raw),
        contracts.UnknownDevice.code,
        f"no device {address_of(raw)} on this chain; check the address, or register "
        "the device first (`medchain devices register`)",
    )


def _addresses(texts: list[str], what: str) -> list[bytes]:
    """The addresses of a lookup, within its limit (413 past it: split the list)."""
    if len(texts) > MAX_DEVICE_LOOKUP:
        raise ApiError(
            413,
            f"too_many_{what}",
            f"the lookup names {len(texts):,} {what}, over the limit of "
            f"{MAX_DEVICE_LOOKUP:,} per request; split the list into several requests",
        )
    return [parse.address(text, f"{what}[{index}]") for index, text in enumerate(texts)]


@router.post("/patients/recipients", summary="Whom many patients' vitals are sealed for")
async def recipients_lookup(body: RecipientsLookupBody, chain: Chain) -> RecipientsLookupModel:
    """Per patient, whom an edge gateway seals their bundles of readings for (the
    patient, guardians and vitals readers) with each one's encryption key: a
    gateway re-reads all its patients in one request instead of several each."""
    raws = _addresses(body.patients, "patients")
    found = chain.vitals_recipients(raws)
    patients = [
        {
            "patient": raw,
            "recipients": None
            if keys is None
            else [{"address": a, "encryption_key": k} for a, k in keys.items()],
        }
        for raw, keys in zip(raws, found, strict=True)
    ]
    return RecipientsLookupModel.model_validate({"patients": patients})


@router.get("/devices/{address}", summary="A device and the state in force")
async def device(address: AddressPath, chain: Chain) -> DeviceModel:
    return device_model(_device(chain, address), chain.height)


@router.post("/devices/lookup", summary="Many devices at one height")
async def device_lookup(body: DeviceLookupBody, chain: Chain) -> DeviceLookupModel:
    """The devices named, in order (null for an address that is no device), and the
    height their state in force is read at: what an edge gateway needs to recheck
    its cached devices in one request instead of one per device."""
    height, found = chain.devices(_addresses(body.devices, "devices"))
    return DeviceLookupModel(
        height=height, devices=[None if d is None else device_model(d, height) for d in found]
    )


@router.get("/devices/{address}/audit", summary="A device's audit trail")
async def device_audit(address: AddressPath, chain: Chain) -> DeviceAuditModel:
    found = _device(chain, address)
    return device_audit_model(found.device, chain.device_audit(found.device), chain.height)


@router.get("/patients/{address}/devices", summary="A patient's devices")
async def patient_devices(address: AddressPath, chain: Chain) -> PatientDevicesModel:
    raw = registered_patient(chain, address)
    devices = [device_model(d, chain.height) for d in chain.devices_of(raw)]
    return PatientDevicesModel.model_validate({"patient": raw, "devices": devices})


@router.get("/patients/{address}/guardians", summary="A patient's guardians")
async def guardians(address: AddressPath, chain: Chain) -> GuardiansModel:
    raw = registered_patient(chain, address)
    return GuardiansModel.model_validate({"patient": raw, "guardians": chain.guardians_of(raw)})


@router.get(
    "/patients/{address}/vitals",
    summary="A patient's readings over a time range (signed read)",
    responses=READ_RESPONSES,
)
async def vitals(
    address: AddressPath,
    from_ms: Annotated[
        int,
        Query(
            ge=0,
            le=contracts.MAX_TIME_MS,
            description="Start of the range, ms since the Unix epoch (included).",
        ),
    ],
    to_ms: Annotated[
        int,
        Query(
            ge=0,
            le=contracts.MAX_TIME_MS,
            description="End of the range, ms since the Unix epoch (included); at most "
            f"{contracts.MAX_VITALS_QUERY_DAYS} UTC days after the start.",
        ),
    ],
    service: Service,
    reader: SignedRead,
    device: Annotated[
        str | None, Query(description="Only bundles holding this device's readings.")
    ] = None,
) -> VitalsModel:
    """The patient's bundles of device readings (one per batch and UTC day) that
    overlap the range, to the patient, their vitals readers, guardians and read
    proxies. The readings are encrypted: a reader opens each bundle's blob
    (`medchain reading list`)."""
    chain = service.chain
    raw = registered_patient(chain, address)
    device_raw = None if device is None else parse.address(device, "device")
    state = chain.ledger.state
    access = allowed(lambda: contracts.vitals_access(state, raw, reader.account, reader.now_ms))
    entries = chain.vitals(raw, from_ms, to_ms, device_raw)  # 400 for a bad range
    detail = f"{from_ms}..{to_ms}" + ("" if device is None else f" device {device}")
    disclose(service, reader, access, DisclosureKind.VITALS, raw, detail=detail)
    return VitalsModel.model_validate(
        {
            "patient": raw,
            "from_ms": from_ms,
            "to_ms": to_ms,
            "device": device_raw,
            "entries": entries,
            "complete_from": chain.vitals_complete_from(),
        }
    )


@router.get("/patients/{address}/vitals-readers", summary="Who reads a patient's vitals")
async def vitals_readers(address: AddressPath, chain: Chain) -> VitalsReadersModel:
    raw = registered_patient(chain, address)
    readers = chain.vitals_readers_of(raw)
    return VitalsReadersModel.model_validate({"patient": raw, "readers": readers})


@router.get("/gateways/{address}", summary="An edge gateway")
async def gateway(address: AddressPath, chain: Chain) -> GatewayModel:
    raw = parse.address(address, "gateway")
    found = on_chain(
        chain.gateway(raw),
        contracts.UnknownGateway.code,
        f"no gateway {address_of(raw)} on this chain; a hospital registers gateways "
        "(`medchain gateways register`)",
    )
    return GatewayModel.of(found)


@router.get("/batches/{batch_id}", summary="A committed batch of readings")
async def batch(batch_id: BatchIdPath, chain: Chain) -> BatchModel:
    raw = parse.hex_bytes(batch_id, "a batch id", contracts.BATCH_ID_SIZE)
    found = on_chain(
        chain.batch(raw), "unknown_batch", f"no batch {raw.hex()} on this chain; check the id"
    )
    return BatchModel.of(found, bundles_listed=found.height >= chain.vitals_complete_from())
