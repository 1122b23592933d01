"""Devices contract (paper 001's IoT tier): medical devices, their edge gateways, and
the penalties that warn, restrict and ban a misbehaving device.

- A **device** is an Ed25519 key bound to one patient; its id is the key's address.
  It is registered by the patient, a guardian of the patient, or an admin or a
  credentialed clinician of a member organisation (its `registrar_org`), with a
  proof that whoever registers it holds the device: the device's signature over
  `registration_message(chain_id, patient)`. Without it, anyone could squat a key
  they read off another patient's device.
- **Labels** ("left wrist", "insulin pump") are sealed to the patient and their
  guardians (`_device_labels`): a label often names or describes the patient, and
  every node serves this contract to anyone. The device's key, patient, kind and
  state stay in clear: gateways need them to check and route readings.
- **Guardians** are the patient's current `devices` proxies (`proxies.add` with scope
  `devices`, see `_proxies`): for the patient's devices only, a guardian may do what
  the patient may, until its proxy expires. The scope alone gives no access to records.
- **The registrar organisation** (the member organisation whose admin or clinician
  registered the device) acts as its hospital: its admins and credentialed clinicians,
  and no other organisation's, may do what the owner side may and lift penalties.
- **States**: `active`, `restricted` (readings refused), `banned`. The owner side
  (patient or guardian) may restrict or ban, and re-activate only a device it
  restricted itself: it can never undo a penalty. The registrar organisation may set
  any state, and re-activating a device there clears its strikes (it vouches for it).
- **Penalties**: a registered **gateway** (an account an admin of a member
  organisation registers; it acts only while that organisation is a member) reports
  an offence with its evidence; each report is a strike. At
  `device_strikes_restrict` strikes the device is restricted until height +
  `device_restrict_blocks`; a strike while it is restricted, or reaching
  `device_strikes_ban`, bans it. A penalty restriction lapses by itself: the state
  is derived from the height when read (`Device.state_at`), so no timed writes.
  The same evidence (by hash) is never counted twice. Gateways are trusted
  reporters: the chain keeps the evidence's hash and the transaction its bytes.
- **Batches**: a gateway commits readings in batches: the Merkle root of the
  batch's reading ids, their count, and one encrypted bundle per patient and UTC day
  of the readings, stored off-chain by CID, with its count, time range and devices.
  Any reading is later proven by its Merkle path to the root. The state keeps only
  what validity and proofs need, a fixed size per batch whatever its bundles: the
  batch's header (`BatchHeader`: gateway, root, count, height, transaction) under its
  id, and its id under its root (a root is committed once). A reading proof is checked
  against that committed root, so a node that joined from a snapshot proves readings
  at once, and no later transaction depends on anything else in a batch.
- **Vitals index**: each bundle is listed under its patient and day, so a patient, or
  a reader they authorised, finds their readings over a time range without scanning
  batches. The bundles only ever accumulate and only queries read them, so they stay
  out of the state: each node builds the index from the committed `commit_batch`
  transactions of its blocks (`committed_batch`), beside the state.
  **Vitals readers** are accounts the patient shares their vitals with
  (`devices.share_vitals`): gateways seal each bundle for the patient, the guardians
  and the vitals readers *at commit time*, so a reader added later reads what is
  committed from then on, and a reader removed keeps what was sealed for them before.

Every registration, relabelling, state change and strike is appended to the device's
audit trail.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._credentials import (
    CLINICIAN_ROLES,
    credential_is_valid,
    get_credential,
    valid_credential,
)
from medchain.app._device_labels import MAX_LABEL_CHARS, check_label
from medchain.app._errors import (
    AlreadyRegistered,
    ContractError,
    DuplicateEvidence,
    InvalidArgument,
    NotAuthorised,
)
from medchain.app._orgs import get_organisation, org_of_admin, require_admin
from medchain.app._proxies import ProxyScope, scoped_proxies
from medchain.app._records import check_blob
from medchain.app._registry import Role, require_identity
from medchain.app._state import State, load, save
from medchain.crypto import (
    ADDRESS_SIZE,
    PUBLIC_KEY_SIZE,
    address_from_public_key,
    format_address,
    sha256,
    tagged_hash,
    verify_signature,
)
from medchain.types import HASH_SIZE, DecodeError, Tx, decode, tx_id

MAX_REASON_CHARS = 256
MAX_EVIDENCE_BYTES = 16_384
MAX_DEVICES_PER_PATIENT = 64
MAX_BATCH_READINGS = 100_000
"""Most readings one batch may commit (its Merkle tree is built off-chain)."""
MAX_BATCH_BUNDLES = 256
"""Most bundles (one per patient and UTC day) in one batch."""
BATCH_ID_SIZE = 16
MS_PER_DAY = 86_400_000
"""A bundle holds readings of one UTC day: `time_ms // MS_PER_DAY`."""
MAX_TIME_MS = 2**63 - 1
"""The latest reading time (a device signs a non-negative 64-bit millisecond time)."""
MAX_VITALS_READERS = 16
MAX_VITALS_QUERY_DAYS = 366
"""Most UTC days one vitals query walks."""
MAX_VITALS_QUERY_SCAN = 100_000
"""Most index entries in the days one vitals query walks (counted before reading any):
a bound on the work one query makes a node do."""
MAX_VITALS_QUERY_ENTRIES = 10_000
"""Most entries one vitals query returns."""


class UnknownDevice(ContractError):
    code = "unknown_device"


class UnknownGateway(ContractError):
    code = "unknown_gateway"


class DeviceBanned(ContractError):
    """The device is banned: only a hospital may lift the ban."""

    code = "device_banned"


class DuplicateBatch(ContractError):
    code = "duplicate_batch"


class DeviceKind(enum.StrEnum):
    HEART_RATE = "heart_rate"
    PULSE_OXIMETER = "pulse_oximeter"
    THERMOMETER = "thermometer"
    BLOOD_PRESSURE = "blood_pressure"
    GLUCOSE_METER = "glucose_meter"
    FALL_DETECTOR = "fall_detector"
    ECG = "ecg"
    CAMERA = "camera"


class DeviceState(enum.StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"
    BANNED = "banned"


class DeviceOffence(enum.StrEnum):
    RATE_LIMIT = "rate_limit"
    NONCONFORMING = "nonconforming"
    UNSIGNED = "unsigned"
    REPLAY = "replay"


class DeviceAction(enum.StrEnum):
    REGISTERED = "registered"
    STATE_CHANGED = "state_changed"
    STRIKE = "strike"
    RELABELLED = "relabelled"


@dataclass(frozen=True, slots=True)
class Device:
    device: bytes
    """The device's id: the address of its key."""
    key: bytes
    patient: bytes
    kind: DeviceKind
    label: bytes
    """A `SealedLabel`'s encoding, empty for none (`sealed_label` reads it). Bytes rather
    than the dataclass so that a device an earlier medchain stored with its label in
    clear still decodes (`sealed_label` then raises DecodeError)."""
    state: DeviceState
    """The stored state; read `state_at(height)` for the state in force."""
    restricted_until: int
    """Last height of a penalty restriction; 0 for none (or one set by hand, which
    lasts until someone lifts it)."""
    strikes: int
    owner_may_lift: bool
    """Whether the owner side may re-activate it: only from a restriction it set."""
    registered_by: bytes
    height: int
    reason: str
    """Why the device is in its state (empty while it never left `active`)."""
    evidence_hash: bytes
    """SHA-256 of the evidence of the last change of state, empty if none was given."""
    audit_count: int
    registrar_org: str = ""
    """The member organisation whose admin or clinician registered it ("" when the
    patient or a guardian did): its admins and clinicians may manage the device."""

    def state_at(self, height: int) -> DeviceState:
        """The state in force at `height`: a penalty restriction lapses after its end."""
        if self.state is DeviceState.RESTRICTED and 0 < self.restricted_until < height:
            return DeviceState.ACTIVE
        return self.state


@dataclass(frozen=True, slots=True)
class DeviceAuditEntry:
    seq: int
    height: int
    time_ms: int
    tx_id: bytes
    action: DeviceAction
    actor: bytes
    state: DeviceState
    """The device's stored state after the entry."""
    restricted_until: int
    strikes: int
    reason: str
    """The reason given, or the offence of a strike."""
    evidence_hash: bytes
    on_behalf: bytes = b""
    """The patient, when the actor acted as their `devices` proxy; empty otherwise."""


@dataclass(frozen=True, slots=True)
class _AddressSet:
    """The readers of a patient's vitals: a sorted set of accounts."""

    addresses: tuple[bytes, ...]
    """Sorted."""


@dataclass(frozen=True, slots=True)
class Gateway:
    address: bytes
    label: str
    registered_by: bytes
    """The admin who registered it."""
    height: int
    active: bool
    batch_count: int
    org_id: str = ""
    """The member organisation it reports for; its admins may revoke it."""


@dataclass(frozen=True, slots=True)
class Bundle:
    """One patient's readings of one UTC day in a batch, encrypted off-chain."""

    patient: bytes
    cid: str
    ciphertext_hash: bytes
    count: int
    """Readings in the bundle."""
    time_from_ms: int
    """Time of its first reading (device time, ms since the Unix epoch)."""
    time_to_ms: int
    """Time of its last reading, in the same UTC day as the first."""
    devices: tuple[bytes, ...]
    """The devices whose readings it holds: sorted, unique, each the patient's."""

    @property
    def day(self) -> int:
        """The UTC day of its readings (days since the Unix epoch)."""
        return self.time_from_ms // MS_PER_DAY


@dataclass(frozen=True, slots=True)
class VitalsEntry:
    """A bundle as the patient's vitals index lists it under its day."""

    batch_id: bytes
    height: int
    root: bytes
    """The batch's Merkle root (the bundle's encryption is bound to it)."""
    cid: str
    ciphertext_hash: bytes
    count: int
    time_from_ms: int
    time_to_ms: int
    devices: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """A committed batch as a node answers it: its header from the state, its bundles
    from the node's index of the blocks."""

    batch_id: bytes
    gateway: bytes
    root: bytes
    """Merkle root (RFC 6962) of the batch's reading ids, as the gateway built it."""
    count: int
    bundles: tuple[Bundle, ...]
    """Empty on a node that has not indexed the block holding it yet (one that joined
    from a snapshot lists older batches' bundles once it has fetched their blocks)."""
    height: int
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class BatchHeader:
    """What the state keeps of a batch: a fixed size, whatever its bundles."""

    batch_id: bytes
    gateway: bytes
    root: bytes
    count: int
    bundle_count: int
    height: int
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class RegisterDeviceArgs:
    device_key: bytes
    patient: bytes
    kind: DeviceKind
    label: bytes
    """A `SealedLabel`'s encoding for the patient and their guardians; empty for none."""
    proof: bytes
    """The device's signature over `registration_message(chain_id, patient)`."""


@dataclass(frozen=True, slots=True)
class RelabelArgs:
    device: bytes
    label: bytes
    """A `SealedLabel`'s encoding for the patient and their current guardians (empty:
    no label): a new label, or the same one sealed again after the guardians changed."""


@dataclass(frozen=True, slots=True)
class SetStateArgs:
    device: bytes
    state: DeviceState
    reason: str
    evidence: bytes = b""


@dataclass(frozen=True, slots=True)
class ReportArgs:
    device: bytes
    offence: DeviceOffence
    evidence: bytes


@dataclass(frozen=True, slots=True)
class RegisterGatewayArgs:
    gateway: bytes
    label: str


@dataclass(frozen=True, slots=True)
class RevokeGatewayArgs:
    gateway: bytes


@dataclass(frozen=True, slots=True)
class CommitBatchArgs:
    root: bytes
    count: int
    bundles: tuple[Bundle, ...]
    """One per (patient, UTC day), sorted by patient then day."""


@dataclass(frozen=True, slots=True)
class VitalsReaderArgs:
    reader: bytes


# -- storage ------------------------------------------------------------------------


def _device_key(device: bytes) -> bytes:
    return b"dev/d/" + device


def _audit_key(device: bytes, seq: int) -> bytes:
    return b"dev/a/" + device + seq.to_bytes(4, "big")


def _patient_count_key(patient: bytes) -> bytes:
    return b"dev/pn/" + patient


def _patient_entry_key(patient: bytes, index: int) -> bytes:
    return b"dev/p/" + patient + index.to_bytes(4, "big")


def _evidence_key(evidence_hash: bytes) -> bytes:
    return b"dev/e/" + evidence_hash


def _gateway_key(gateway: bytes) -> bytes:
    return b"dev/gw/" + gateway


def _batch_key(batch_id: bytes) -> bytes:
    return b"dev/b/" + batch_id


def _root_key(root: bytes) -> bytes:
    return b"dev/r/" + root


def _vitals_readers_key(patient: bytes) -> bytes:
    return b"dev/vr/" + patient


def registration_message(chain_id: str, patient: bytes) -> bytes:
    """What a device signs to be registered for `patient` on chain `chain_id`."""
    return tagged_hash("medchain/device-registration", chain_id.encode(), patient)


def new_batch_id(gateway: bytes, nonce: int) -> bytes:
    """Deterministic and unique: one account's nonce is never used twice."""
    return tagged_hash("medchain/device-batch", gateway, nonce.to_bytes(8, "big"))[:BATCH_ID_SIZE]


# -- queries ------------------------------------------------------------------------


def get_device(state: State, device: bytes) -> Device | None:
    return load(state, _device_key(device), Device)


def require_device(state: State, device: bytes) -> Device:
    found = get_device(state, device)
    if found is None:
        raise UnknownDevice(
            f"no device {format_address(device)} on this chain; "
            "register it first with `devices.register`"
        )
    return found


def devices_of(state: State, patient: bytes) -> list[Device]:
    """The patient's devices, in registration order."""
    found = []
    for index in range(_count(state, _patient_count_key(patient))):
        device_id = state.get(_patient_entry_key(patient, index))
        assert device_id is not None, "patient device list has a hole"
        device = get_device(state, device_id)
        assert device is not None, "patient device list names an unknown device"
        found.append(device)
    return found


def device_audit(state: State, device: Device) -> list[DeviceAuditEntry]:
    trail = [
        load(state, _audit_key(device.device, s), DeviceAuditEntry)
        for s in range(device.audit_count)
    ]
    assert all(e is not None for e in trail), "device audit trail has a hole"
    return [e for e in trail if e is not None]


def restriction_lapses(trail: Sequence[DeviceAuditEntry], height: int) -> list[int]:
    """Per entry of a device's trail: the height from which the penalty restriction it
    set was no longer in force, if that came before the next entry (or, for the last, by
    `height`, the chain's height); 0 otherwise. A lapse writes nothing (the state is
    derived when read, `Device.state_at`), but it is a change of state all the same: it
    follows from the entry's `restricted_until`, so readers of the trail show it."""
    lapses: list[int] = []
    for index, entry in enumerate(trail):
        upto = trail[index + 1].height if index + 1 < len(trail) else height
        restricted = entry.state is DeviceState.RESTRICTED
        lapsed = restricted and 0 < entry.restricted_until < upto
        lapses.append(entry.restricted_until + 1 if lapsed else 0)
    return lapses


def _address_set(state: State, key: bytes) -> tuple[bytes, ...]:
    found = load(state, key, _AddressSet)
    return () if found is None else found.addresses


def _store_address_set(state: State, key: bytes, addresses: Iterable[bytes]) -> None:
    """Save the set sorted, or delete its key once it is empty."""
    ordered = tuple(sorted(addresses))
    if ordered:
        save(state, key, _AddressSet(ordered))
    else:
        state.delete(key)


def guardians_of(state: State, patient: bytes, now_ms: int) -> tuple[bytes, ...]:
    """The patient's guardians at block time `now_ms`: their current `devices` proxies,
    sorted. They manage the patient's devices and read their labels and vitals."""
    return scoped_proxies(state, patient, ProxyScope.DEVICES, now_ms)


def get_gateway(state: State, gateway: bytes) -> Gateway | None:
    return load(state, _gateway_key(gateway), Gateway)


def get_batch_header(state: State, batch_id: bytes) -> BatchHeader | None:
    raw = state.get(_batch_key(batch_id))
    if raw is None:
        return None
    try:
        return decode(BatchHeader, raw)
    except DecodeError:  # stored whole, bundles and all, by an earlier medchain
        old = decode(Batch, raw)
        return BatchHeader(
            old.batch_id, old.gateway, old.root, old.count, len(old.bundles), old.height, old.tx_id
        )


def committed_batch(tx: Tx, height: int) -> Batch:
    """The batch a `devices.commit_batch` transaction committed at `height` (its
    receipt says it succeeded): what each node indexes from its blocks. DecodeError if
    its arguments do not decode (a successful transaction's always do)."""
    if tx.method != "devices.commit_batch":
        raise ValueError(f"a {tx.method} transaction commits no batch")
    args = decode(CommitBatchArgs, tx.args)
    gateway = address_from_public_key(tx.sender)
    batch_id = new_batch_id(gateway, tx.nonce)
    return Batch(batch_id, gateway, args.root, args.count, args.bundles, height, tx_id(tx))


def vitals_readers_of(state: State, patient: bytes) -> tuple[bytes, ...]:
    """Accounts the patient shares their vitals with, sorted."""
    return _address_set(state, _vitals_readers_key(patient))


def check_vitals_range(from_ms: int, to_ms: int) -> None:
    """Refuse a time range a vitals query does not answer, saying what to ask instead."""
    if not 0 <= from_ms <= MAX_TIME_MS or not 0 <= to_ms <= MAX_TIME_MS:
        raise InvalidArgument(
            "times are milliseconds since the Unix epoch, from 0 to "
            f"{MAX_TIME_MS}; got {from_ms} to {to_ms}"
        )
    if from_ms > to_ms:
        raise InvalidArgument(
            f"the range starts ({from_ms}) after it ends ({to_ms}); give from <= to"
        )
    days = to_ms // MS_PER_DAY - from_ms // MS_PER_DAY + 1
    if days > MAX_VITALS_QUERY_DAYS:
        raise InvalidArgument(
            f"the range covers {days} UTC days; one query covers at most "
            f"{MAX_VITALS_QUERY_DAYS}: split it into shorter ranges"
        )


def _count(state: State, key: bytes) -> int:
    raw = state.get(key)
    return int.from_bytes(raw, "big") if raw else 0


# -- checks -------------------------------------------------------------------------


def _check_text(what: str, text: str, limit: int) -> None:
    if not text.strip():
        raise InvalidArgument(f"give the {what}: it may not be empty")
    if len(text) > limit:
        raise InvalidArgument(f"the {what} is limited to {limit} characters")


def _check_address(what: str, address: bytes) -> None:
    if len(address) != ADDRESS_SIZE:
        raise InvalidArgument(f"the {what} must be a {ADDRESS_SIZE}-byte address")


def _check_evidence(evidence: bytes, required: bool) -> bytes:
    """The evidence's hash (empty for no evidence)."""
    if len(evidence) > MAX_EVIDENCE_BYTES:
        raise InvalidArgument(
            f"evidence is limited to {MAX_EVIDENCE_BYTES} bytes; "
            "store larger evidence off-chain and submit its CID"
        )
    if not evidence:
        if required:
            raise InvalidArgument("a report needs its evidence (the offending reading or log)")
        return b""
    return sha256(evidence)


def _acting_org(state: State, sender: bytes, now_ms: int) -> str:
    """The member organisation `sender` acts for, as its admin or as a credentialed
    clinician (the first by org id); "" if none."""
    org = org_of_admin(state, sender)
    if org is not None:
        return org.org_id
    credential = valid_credential(state, sender, CLINICIAN_ROLES, now_ms)
    return credential.org_id if credential is not None else ""


def _is_registrar(state: State, device: Device, sender: bytes, now_ms: int) -> bool:
    """Whether `sender` is an admin or a credentialed clinician of the member
    organisation that registered `device`."""
    if not device.registrar_org:
        return False
    org = org_of_admin(state, sender)
    if org is not None and org.org_id == device.registrar_org:
        return True
    credential = get_credential(state, sender, device.registrar_org)
    return (
        credential is not None
        and credential.role in CLINICIAN_ROLES
        and credential_is_valid(state, credential, now_ms)
    )


def _is_owner_side(state: State, call: Call, patient: bytes) -> bool:
    """The sender is the patient or one of their guardians (`devices` proxies)."""
    return call.sender == patient or _is_proxy_side(state, call, patient)


def _is_proxy_side(state: State, call: Call, patient: bytes) -> bool:
    """The sender is one of the patient's current `devices` proxies (acting for them)."""
    return call.sender != patient and call.sender in guardians_of(
        state, patient, call.block.time_ms
    )


def _require_gateway(state: State, sender: bytes) -> Gateway:
    gateway = get_gateway(state, sender)
    if gateway is None or not gateway.active:
        raise UnknownGateway(
            f"{format_address(sender)} is not an active gateway; an admin of a member "
            "organisation registers gateways with `devices.register_gateway`"
        )
    org = get_organisation(state, gateway.org_id)
    if org is None or not org.member:
        raise UnknownGateway(
            f"gateway {format_address(sender)} reports for {gateway.org_id!r}, which is "
            "no longer a member organisation"
        )
    return gateway


# -- audit --------------------------------------------------------------------------


def _audit(
    state: State,
    call: Call,
    device: Device,
    action: DeviceAction,
    reason: str,
    evidence_hash: bytes,
) -> Device:
    """Append to the device's audit trail, save the device, and emit the event."""
    on_behalf = device.patient if _is_proxy_side(state, call, device.patient) else b""
    entry = DeviceAuditEntry(
        seq=device.audit_count,
        height=call.block.height,
        time_ms=call.block.time_ms,
        tx_id=call.tx_id,
        action=action,
        actor=call.sender,
        state=device.state,
        restricted_until=device.restricted_until,
        strikes=device.strikes,
        reason=reason,
        evidence_hash=evidence_hash,
        on_behalf=on_behalf,
    )
    save(state, _audit_key(device.device, entry.seq), entry)
    updated = replace(device, audit_count=device.audit_count + 1)
    save(state, _device_key(device.device), updated)
    call.emit(
        f"device.{action.value}",
        device=device.device,
        patient=device.patient,
        actor=call.sender,
        state=device.state.value,
        strikes=device.strikes,
        reason=reason,
        **({"proxy": call.sender} if on_behalf else {}),
    )
    return updated


# -- methods ------------------------------------------------------------------------


def register(state: State, call: Call, args: RegisterDeviceArgs) -> None:
    _check_address("patient", args.patient)
    require_identity(state, args.patient, Role.PATIENT)
    registrar_org = ""
    if not _is_owner_side(state, call, args.patient):
        registrar_org = _acting_org(state, call.sender, call.block.time_ms)
        if not registrar_org:
            raise NotAuthorised(
                f"only the patient {format_address(args.patient)}, their `devices` proxy "
                "(`medchain proxy add`), or an admin or credentialed clinician of a "
                "member organisation may register their devices"
            )
    if len(args.device_key) != PUBLIC_KEY_SIZE:
        raise InvalidArgument(f"the device key must be a {PUBLIC_KEY_SIZE}-byte Ed25519 key")
    message = registration_message(call.block.chain_id, args.patient)
    if not verify_signature(args.device_key, message, args.proof):
        raise InvalidArgument(
            "the proof does not verify under the device key: have the device sign "
            "registration_message(chain_id, patient) with its own key"
        )
    check_label(args.label, args.patient, guardians_of(state, args.patient, call.block.time_ms))
    device_id = address_from_public_key(args.device_key)
    if get_device(state, device_id) is not None:
        raise AlreadyRegistered(
            f"device {format_address(device_id)} is already registered; "
            "a device serves one patient — give a new device its own key"
        )
    count_key = _patient_count_key(args.patient)
    count = _count(state, count_key)
    if count >= MAX_DEVICES_PER_PATIENT:
        raise InvalidArgument(f"a patient has at most {MAX_DEVICES_PER_PATIENT} devices")
    state.set(_patient_entry_key(args.patient, count), device_id)
    state.set(count_key, (count + 1).to_bytes(4, "big"))
    device = Device(
        device=device_id,
        key=args.device_key,
        patient=args.patient,
        kind=args.kind,
        label=args.label,
        state=DeviceState.ACTIVE,
        restricted_until=0,
        strikes=0,
        owner_may_lift=False,
        registered_by=call.sender,
        height=call.block.height,
        reason="",
        evidence_hash=b"",
        audit_count=0,
        registrar_org=registrar_org,
    )
    _audit(state, call, device, DeviceAction.REGISTERED, "", b"")


def relabel(state: State, call: Call, args: RelabelArgs) -> None:
    """Patient, guardian or the registrar organisation: replace a device's label,
    sealed for the patient and their guardians of now."""
    device = require_device(state, args.device)
    if not _is_owner_side(state, call, device.patient) and not _is_registrar(
        state, device, call.sender, call.block.time_ms
    ):
        raise NotAuthorised(
            f"only the patient who owns device {format_address(device.device)}, their "
            "guardian, or the organisation that registered it may relabel it"
        )
    guardians = guardians_of(state, device.patient, call.block.time_ms)
    check_label(args.label, device.patient, guardians)
    device = replace(device, label=args.label)
    _audit(state, call, device, DeviceAction.RELABELLED, "", b"")


def share_vitals(state: State, call: Call, args: VitalsReaderArgs) -> None:
    """Patient: have gateways seal the patient's readings for `reader` too, from the
    next batch on (what was committed before stays sealed for its readers of then)."""
    require_identity(state, call.sender, Role.PATIENT)
    _check_address("reader", args.reader)
    if args.reader == call.sender:
        raise InvalidArgument("a patient always reads their own vitals; share them with another")
    identity = require_identity(state, args.reader)
    if identity.role is Role.VALIDATOR or not identity.encryption_key:
        raise InvalidArgument(
            f"{format_address(args.reader)} is a {identity.role.value} without an encryption "
            "key and cannot read vitals; share them with an account registered with one"
        )
    current = vitals_readers_of(state, call.sender)
    if args.reader in current:
        raise InvalidArgument(f"{format_address(args.reader)} already reads your vitals")
    if len(current) >= MAX_VITALS_READERS:
        raise InvalidArgument(
            f"a patient shares their vitals with at most {MAX_VITALS_READERS} readers; "
            "stop sharing with one first (`devices.unshare_vitals`)"
        )
    _store_address_set(state, _vitals_readers_key(call.sender), (*current, args.reader))
    call.emit("device.vitals_shared", patient=call.sender, reader=args.reader)


def unshare_vitals(state: State, call: Call, args: VitalsReaderArgs) -> None:
    """Patient: stop sealing readings for `reader` from the next batch on (bundles
    already sealed for them stay readable to them)."""
    current = vitals_readers_of(state, call.sender)
    if args.reader not in current:
        raise InvalidArgument(
            f"{format_address(args.reader)} does not read the vitals of "
            f"{format_address(call.sender)}; `vitals_readers_of` lists who does"
        )
    remaining = (r for r in current if r != args.reader)
    _store_address_set(state, _vitals_readers_key(call.sender), remaining)
    call.emit("device.vitals_unshared", patient=call.sender, reader=args.reader)


def set_state(state: State, call: Call, args: SetStateArgs) -> None:
    device = require_device(state, args.device)
    hospital = _is_registrar(state, device, call.sender, call.block.time_ms)
    if not hospital and not _is_owner_side(state, call, device.patient):
        raise NotAuthorised(
            f"only the patient who owns device {format_address(device.device)}, "
            "their guardian, or the organisation that registered it may change its state"
        )
    _check_text("reason", args.reason, MAX_REASON_CHARS)
    evidence_hash = _check_evidence(args.evidence, required=False)
    height = call.block.height
    now = device.state_at(height)
    if args.state is now:
        raise InvalidArgument(f"device {format_address(device.device)} is already {now.value}")
    if not hospital:
        if now is DeviceState.BANNED:
            raise DeviceBanned(
                f"device {format_address(device.device)} is banned; only the organisation "
                "that registered it may lift a ban"
            )
        lifting = now is DeviceState.RESTRICTED and args.state is DeviceState.ACTIVE
        if lifting and not device.owner_may_lift:
            until = device.restricted_until
            raise NotAuthorised(
                f"device {format_address(device.device)} was restricted by "
                + (
                    f"the penalty rule until height {until}; wait, or "
                    if until
                    else "its registrar organisation; "
                )
                + "ask the organisation that registered it to lift it"
            )
    strikes = 0 if hospital and args.state is DeviceState.ACTIVE else device.strikes
    device = replace(
        device,
        state=args.state,
        restricted_until=0,
        strikes=strikes,
        owner_may_lift=not hospital and args.state is DeviceState.RESTRICTED,
        reason=args.reason,
        evidence_hash=evidence_hash,
    )
    _audit(state, call, device, DeviceAction.STATE_CHANGED, args.reason, evidence_hash)


def report(state: State, call: Call, args: ReportArgs) -> None:
    _require_gateway(state, call.sender)
    device = require_device(state, args.device)
    evidence_hash = _check_evidence(args.evidence, required=True)
    if state.get(_evidence_key(evidence_hash)) is not None:
        raise DuplicateEvidence("this evidence was already reported; each offence counts once")
    params = call.block.params
    height = call.block.height
    now = device.state_at(height)
    if now is DeviceState.BANNED:
        raise DeviceBanned(f"device {format_address(device.device)} is already banned")
    strikes = device.strikes + 1
    if now is DeviceState.RESTRICTED or strikes >= params.device_strikes_ban:
        new_state, until = DeviceState.BANNED, 0
    elif strikes >= params.device_strikes_restrict:
        new_state, until = DeviceState.RESTRICTED, height + params.device_restrict_blocks
    else:
        new_state, until = DeviceState.ACTIVE, 0
    reason = args.offence.value
    if new_state is not DeviceState.ACTIVE:
        device = replace(device, reason=reason, evidence_hash=evidence_hash)
    device = replace(
        device, state=new_state, restricted_until=until, strikes=strikes, owner_may_lift=False
    )
    state.set(_evidence_key(evidence_hash), device.device)
    _audit(state, call, device, DeviceAction.STRIKE, reason, evidence_hash)


def register_gateway(state: State, call: Call, args: RegisterGatewayArgs) -> None:
    org = require_admin(state, call.sender)
    _check_address("gateway", args.gateway)
    _check_text("label", args.label, MAX_LABEL_CHARS)
    if get_gateway(state, args.gateway) is not None:
        raise AlreadyRegistered(
            f"{format_address(args.gateway)} is already a gateway (revoked gateways stay "
            "revoked); give a new gateway its own key"
        )
    save(
        state,
        _gateway_key(args.gateway),
        Gateway(args.gateway, args.label, call.sender, call.block.height, True, 0, org.org_id),
    )
    call.emit(
        "device.gateway_registered", gateway=args.gateway, hospital=call.sender, org=org.org_id
    )


def revoke_gateway(state: State, call: Call, args: RevokeGatewayArgs) -> None:
    gateway = get_gateway(state, args.gateway)
    if gateway is None or not gateway.active:
        raise UnknownGateway(f"{format_address(args.gateway)} is not an active gateway")
    admin_of = org_of_admin(state, call.sender)
    if call.sender != gateway.registered_by and (
        admin_of is None or admin_of.org_id != gateway.org_id
    ):
        raise NotAuthorised(
            f"only an admin of {gateway.org_id!r}, whose gateway "
            f"{format_address(args.gateway)} is, may revoke it"
        )
    save(state, _gateway_key(args.gateway), replace(gateway, active=False))
    call.emit("device.gateway_revoked", gateway=args.gateway, hospital=call.sender)


def commit_batch(state: State, call: Call, args: CommitBatchArgs) -> None:
    gateway = _require_gateway(state, call.sender)
    if len(args.root) != HASH_SIZE:
        raise InvalidArgument(f"the batch root must be a {HASH_SIZE}-byte Merkle root")
    if not 1 <= args.count <= MAX_BATCH_READINGS:
        raise InvalidArgument(
            f"a batch holds 1 to {MAX_BATCH_READINGS} readings, not {args.count}; "
            "split larger batches"
        )
    if not 1 <= len(args.bundles) <= min(args.count, MAX_BATCH_BUNDLES):
        raise InvalidArgument(
            f"a batch carries 1 to {MAX_BATCH_BUNDLES} bundles, at most one per reading; "
            "split larger batches"
        )
    keys = [(b.patient, b.day) for b in args.bundles]
    if keys != sorted(set(keys)):
        raise InvalidArgument(
            "bundles must be one per patient and UTC day of their readings, sorted by "
            "patient address, then day"
        )
    for bundle in args.bundles:
        require_identity(state, bundle.patient, Role.PATIENT)
        check_blob(bundle.cid, bundle.ciphertext_hash)
        _check_bundle(state, bundle)
    total = sum(b.count for b in args.bundles)
    if total != args.count:
        raise InvalidArgument(
            f"the bundles hold {total} readings but the batch counts {args.count}: every "
            "reading of the batch is in exactly one bundle"
        )
    if state.get(_root_key(args.root)) is not None:
        raise DuplicateBatch("a batch with this root was already committed; do not resubmit it")
    batch_id = new_batch_id(call.sender, call.nonce)
    header = BatchHeader(
        batch_id,
        call.sender,
        args.root,
        args.count,
        len(args.bundles),
        call.block.height,
        call.tx_id,
    )
    save(state, _batch_key(batch_id), header)
    state.set(_root_key(args.root), batch_id)
    save(state, _gateway_key(call.sender), replace(gateway, batch_count=gateway.batch_count + 1))
    call.emit(
        "device.batch_committed",
        batch=batch_id,
        gateway=call.sender,
        root=args.root,
        count=args.count,
        bundles=len(args.bundles),
    )


def _check_bundle(state: State, bundle: Bundle) -> None:
    """A bundle's count, time range and devices (its patient and blob are checked)."""
    who = format_address(bundle.patient)
    if bundle.count < 1:
        raise InvalidArgument(f"the bundle of {who} holds no readings; leave it out")
    if not 0 <= bundle.time_from_ms <= bundle.time_to_ms <= MAX_TIME_MS:
        raise InvalidArgument(
            f"the bundle of {who} has the time range {bundle.time_from_ms} to "
            f"{bundle.time_to_ms}: give its first and last reading's time, ms since the "
            f"Unix epoch (0 to {MAX_TIME_MS}), first <= last"
        )
    if bundle.time_to_ms // MS_PER_DAY != bundle.day:
        raise InvalidArgument(
            f"the bundle of {who} spans more than one UTC day ({bundle.time_from_ms} to "
            f"{bundle.time_to_ms}); split its readings at midnight UTC, one bundle per day"
        )
    if not 1 <= len(bundle.devices) <= min(bundle.count, MAX_DEVICES_PER_PATIENT):
        raise InvalidArgument(
            f"the bundle of {who} names {len(bundle.devices)} devices; name the 1 to "
            f"{MAX_DEVICES_PER_PATIENT} devices whose readings it holds"
        )
    if list(bundle.devices) != sorted(set(bundle.devices)):
        raise InvalidArgument(
            f"the devices of the bundle of {who} must be unique and sorted by address"
        )
    for address in bundle.devices:
        device = get_device(state, address)
        if device is None or device.patient != bundle.patient:
            raise InvalidArgument(
                f"device {format_address(address)} is not registered to {who}; a bundle "
                "holds only the readings of its patient's devices (`devices.register`)"
            )


METHODS: Methods = {
    "devices.register": (RegisterDeviceArgs, register),
    "devices.relabel": (RelabelArgs, relabel),
    "devices.set_state": (SetStateArgs, set_state),
    "devices.report": (ReportArgs, report),
    "devices.register_gateway": (RegisterGatewayArgs, register_gateway),
    "devices.revoke_gateway": (RevokeGatewayArgs, revoke_gateway),
    "devices.commit_batch": (CommitBatchArgs, commit_batch),
    "devices.share_vitals": (VitalsReaderArgs, share_vitals),
    "devices.unshare_vitals": (VitalsReaderArgs, unshare_vitals),
}
