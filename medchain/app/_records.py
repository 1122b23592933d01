"""Medical-record contract (paper 002's MRC): one record per clinical document.

The ciphertext lives off-chain under its CID; the chain keeps the CID, its hash,
the content key wrapped for each authorised reader, the reader list, and an
append-only audit trail of every creation, grant, revoke and new version.
Revocation is forward-only: a revoked reader keeps what it could already open,
but every later version is encrypted under a fresh key it does not receive.

Proxies (`_proxies`): the owner's `grant` proxy grants and revokes for the owner, a
`write` proxy writes records for the patient, and the audit trail names the patient
it acted for (`on_behalf`). The patient's `read` proxies are required readers: a new
record or version must wrap its key for each, and one added since joins the readers.

Grants (`_grants`, `_grant_terms`): each reader is granted for purposes of use and until
an expiry; an expired grant is a revoke from the next version on. Standing consents
(`_consents`) add required readers as `read` proxies do.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from medchain.app import _access_lists as alc
from medchain.app._consents import check_expiry, normalise_purposes
from medchain.app._context import Call, Methods
from medchain.app._credentials import CLINICIAN_ROLES, require_credential
from medchain.app._emergency_set import EmergencyWrapArgs, attach_emergency_wrap
from medchain.app._errors import (
    AlreadyAuthorised,
    ContractError,
    InvalidArgument,
    NotAuthorised,
    NotOwner,
    RecordErased,
    UnknownRecord,
)
from medchain.app._grant_terms import (
    ReaderTerms,
    WriteContext,
    consent_grant,
    expired_readers,
    named_consent,
    new_record_grants,
    refuse_expired_wraps,
    require_wrapped_for,
    required_for,
    version_grants,
)
from medchain.app._grants import ReaderGrant, delete_reader_grant, put_reader_grant
from medchain.app._keywrap import KeyWrap, check_wraps
from medchain.app._proxies import (
    ProxyScope,
    acting_for,
    get_proxy,
    proxy_allows,
    require_proxy,
)
from medchain.app._purposes import PurposeOfUse
from medchain.app._registry import Role, require_identity, subjoin_record
from medchain.app._state import State, load, save
from medchain.crypto import format_address, tagged_hash
from medchain.types import MedchainError, parse_cid

RECORD_ID_SIZE = 16
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


class AuditAction(enum.StrEnum):
    CREATED = "created"
    GRANTED = "granted"
    REVOKED = "revoked"
    VERSIONED = "versioned"
    RESEARCH_GRANTED = "research_granted"
    RESEARCH_REVOKED = "research_revoked"
    REWRAPPED = "rewrapped"
    ERASED = "erased"
    TERMS_CHANGED = "terms_changed"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class Record:
    record_id: bytes
    owner: bytes
    author: bytes
    resource_type: str
    created_height: int
    readers: tuple[bytes, ...]
    """Sorted addresses currently authorised to read, the owner not included."""
    version_count: int
    audit_count: int
    erased_height: int = 0
    """The height the record was erased at (0 while it is not): its versions keep their
    CIDs and hashes, but no wraps, and the nodes hold no ciphertext."""
    erased_ms: int = 0
    """Block time of the erasure."""
    erased_by: bytes = b""
    """Who erased it: the owner, or their `grant` proxy."""


@dataclass(frozen=True, slots=True)
class RecordVersion:
    record_id: bytes
    number: int
    cid: str
    ciphertext_hash: bytes
    author: bytes
    height: int
    tx_id: bytes
    wraps: tuple[KeyWrap, ...]


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    height: int
    time_ms: int
    tx_id: bytes
    action: AuditAction
    actor: bytes
    subject: bytes
    """The reader or institution concerned, empty when none."""
    version: int
    on_behalf: bytes = b""
    """The patient the actor acted for as their proxy; empty when the actor acted as
    themselves."""


@dataclass(frozen=True, slots=True)
class CreateRecordArgs:
    patient: bytes
    resource_type: str
    cid: str
    ciphertext_hash: bytes
    wraps: tuple[KeyWrap, ...]
    emergency: tuple[EmergencyWrapArgs, ...] = ()
    """The content key wrapped for the patient's emergency set, when its policy covers
    the record's type (see `_emergency_set`)."""
    terms: tuple[ReaderTerms, ...] = ()
    """Sorted by reader: the grant terms of readers; readers without get the defaults,
    readers a standing consent requires get the consent's."""


@dataclass(frozen=True, slots=True)
class VersionWrap:
    version: int
    wrapped_key: bytes


@dataclass(frozen=True, slots=True)
class WarrantArgs:
    record_id: bytes
    reader: bytes
    wraps: tuple[VersionWrap, ...]
    """The versions' content keys wrapped for the new reader; must include the latest."""
    purposes: tuple[PurposeOfUse, ...] = ()
    """What the reader may read for; empty means `DEFAULT_GRANT_PURPOSES`."""
    expires_ms: int = 0
    """Block time the grant ends at (0 = never): then it behaves as a revoke."""
    consent_id: int = 0
    """The standing consent the patient's client re-wraps a past record under: the
    grant then takes that consent's terms, not the two fields above."""


@dataclass(frozen=True, slots=True)
class UnwarrantArgs:
    record_id: bytes
    reader: bytes


@dataclass(frozen=True, slots=True)
class AddVersionArgs:
    record_id: bytes
    cid: str
    ciphertext_hash: bytes
    wraps: tuple[KeyWrap, ...]
    emergency: tuple[EmergencyWrapArgs, ...] = ()


# -- storage ------------------------------------------------------------------------


def _record_key(record_id: bytes) -> bytes:
    return b"rec/" + record_id


def _version_key(record_id: bytes, number: int) -> bytes:
    return b"recv/" + record_id + number.to_bytes(4, "big")


def _audit_key(record_id: bytes, seq: int) -> bytes:
    return b"reca/" + record_id + seq.to_bytes(4, "big")


def new_record_id(sender: bytes, nonce: int) -> bytes:
    """Deterministic and unique: one account's nonce is never used twice."""
    return tagged_hash("medchain/record", sender, nonce.to_bytes(8, "big"))[:RECORD_ID_SIZE]


def get_record(state: State, record_id: bytes) -> Record | None:
    return load(state, _record_key(record_id), Record)


def require_record(state: State, record_id: bytes) -> Record:
    record = get_record(state, record_id)
    if record is None:
        raise UnknownRecord(
            f"no record {record_id.hex()} on this chain; check the id (`medchain record list`)"
        )
    if record.erased_height:
        raise RecordErased(
            f"record {record_id.hex()} was erased at height {record.erased_height} "
            f"(block time {record.erased_ms} ms) by {format_address(record.erased_by)}: "
            "nothing of it can be read or changed any more"
        )
    return record


def get_version(state: State, record_id: bytes, number: int) -> RecordVersion | None:
    return load(state, _version_key(record_id, number), RecordVersion)


def save_version(state: State, version: RecordVersion) -> None:
    save(state, _version_key(version.record_id, version.number), version)


def versions(state: State, record: Record) -> list[RecordVersion]:
    found = [get_version(state, record.record_id, n) for n in range(1, record.version_count + 1)]
    assert all(v is not None for v in found), "record version missing"
    return [v for v in found if v is not None]


def audit_trail(state: State, record: Record) -> list[AuditEntry]:
    trail = [
        load(state, _audit_key(record.record_id, s), AuditEntry) for s in range(record.audit_count)
    ]
    assert all(e is not None for e in trail), "audit trail has a hole"
    return [e for e in trail if e is not None]


def append_audit(
    state: State,
    call: Call,
    record: Record,
    action: AuditAction,
    subject: bytes = b"",
    version: int = 0,
    on_behalf: bytes = b"",
    **details: str | int,
) -> Record:
    """Append to the record's audit trail and save the record; returns the saved record.
    `on_behalf`: the patient the sender acts for as proxy (the event names both);
    `details`: more attributes of the event (not kept in the trail)."""
    entry = AuditEntry(
        seq=record.audit_count,
        height=call.block.height,
        time_ms=call.block.time_ms,
        tx_id=call.tx_id,
        action=action,
        actor=call.sender,
        subject=subject,
        version=version,
        on_behalf=on_behalf,
    )
    save(state, _audit_key(record.record_id, entry.seq), entry)
    updated = replace(record, audit_count=record.audit_count + 1)
    save(state, _record_key(record.record_id), updated)
    by_proxy = {"proxy": call.sender, "patient": on_behalf} if on_behalf else {}
    call.emit(
        f"record.{action.value}",
        record=record.record_id,
        actor=call.sender,
        subject=subject,
        version=version,
        **by_proxy,
        **details,
    )
    return updated


# -- checks -------------------------------------------------------------------------


def check_blob(cid: str, ciphertext_hash: bytes) -> None:
    try:
        digest = parse_cid(cid)
    except MedchainError as exc:
        raise InvalidArgument(f"record CID is invalid: {exc.message}") from exc
    if digest != ciphertext_hash:
        raise InvalidArgument("the ciphertext hash does not match the CID; upload again")


def _check_readers(state: State, call: Call, readers: tuple[bytes, ...]) -> None:
    if len(readers) > call.block.params.max_readers:
        raise InvalidArgument(f"a record has at most {call.block.params.max_readers} readers")
    for reader in readers:
        _require_reader_identity(state, reader)


def _require_reader_identity(state: State, reader: bytes) -> None:
    identity = require_identity(state, reader)
    if identity.role is Role.VALIDATOR or not identity.encryption_key:
        raise InvalidArgument(
            f"{format_address(reader)} is a {identity.role.value} without an encryption key "
            "and cannot read records"
        )


def owner_or_grant_proxy(state: State, record: Record, call: Call, action: str) -> bytes:
    """Who may change who reads a record: its owner (returns b"") or a current proxy of
    the owner with scope `grant` (returns the owner, for whom the proxy acts)."""
    if call.sender != record.owner and get_proxy(state, record.owner, call.sender) is None:
        raise NotOwner(
            f"only the patient who owns record {record.record_id.hex()} "
            f"({format_address(record.owner)}) or their `grant` proxy may change who can "
            "read it"
        )
    return acting_for(state, call, record.owner, ProxyScope.GRANT, action)


def _author_for(state: State, call: Call, patient: bytes) -> bytes:
    """Who writes a record for `patient`: the patient (b""), a credentialed clinician
    (b""), or a current `write` proxy of the patient (returns the patient, for whom it
    acts). A proxy without the scope who is no clinician is told why as a proxy."""
    if call.sender == patient:
        return b""
    now_ms = call.block.time_ms
    if proxy_allows(state, call.sender, patient, ProxyScope.WRITE, now_ms):
        return patient
    try:
        _require_clinician(state, call)
    except ContractError:
        if get_proxy(state, patient, call.sender) is None:
            raise
        require_proxy(state, call.sender, patient, ProxyScope.WRITE, now_ms, "write a record")
    return b""


def _require_clinician(state: State, call: Call) -> None:
    action = "write a record for another patient"
    require_credential(state, call.sender, CLINICIAN_ROLES, call.block.time_ms, action)


# -- methods ------------------------------------------------------------------------


def create(state: State, call: Call, args: CreateRecordArgs) -> None:
    require_identity(state, args.patient, Role.PATIENT)
    on_behalf = _author_for(state, call, args.patient)
    if not _RESOURCE_TYPE.match(args.resource_type):
        raise InvalidArgument(f"{args.resource_type!r} is not a FHIR resource type name")
    check_blob(args.cid, args.ciphertext_hash)
    readers = tuple(w.reader for w in args.wraps if w.reader != args.patient)
    write = WriteContext(args.patient, call.sender, args.resource_type, call.block.time_ms)
    require_wrapped_for(args.wraps, required_for(state, write))
    _check_readers(state, call, readers)
    check_wraps(args.wraps, (args.patient, *readers))

    record_id = new_record_id(call.sender, call.nonce)
    if get_record(state, record_id) is not None:  # impossible unless a nonce repeats
        raise InvalidArgument("record id collision")
    record = Record(
        record_id=record_id,
        owner=args.patient,
        author=call.sender,
        resource_type=args.resource_type,
        created_height=call.block.height,
        readers=readers,
        version_count=1,
        audit_count=0,
    )
    save(
        state,
        _version_key(record_id, 1),
        RecordVersion(
            record_id,
            1,
            args.cid,
            args.ciphertext_hash,
            call.sender,
            call.block.height,
            call.tx_id,
            args.wraps,
        ),
    )
    new_record_grants(state, call, record_id, write, readers, args.terms)
    subjoin_record(state, args.patient, record_id)
    attach_emergency_wrap(state, args.patient, record_id, args.resource_type, 1, args.emergency)
    record = append_audit(state, call, record, AuditAction.CREATED, b"", 1, on_behalf)
    for reader in readers:
        record = append_audit(state, call, record, AuditAction.GRANTED, reader, 1, on_behalf)


def _warrant_grant(state: State, call: Call, record: Record, args: WarrantArgs) -> ReaderGrant:
    """The terms a warrant grants: a standing consent's, when it names one that covers
    the record for the reader, else its own purposes and expiry."""
    write = WriteContext(record.owner, record.author, record.resource_type, call.block.time_ms)
    if args.consent_id:
        terms = ReaderTerms(args.reader, (), 0, args.consent_id)
        return consent_grant(
            record.record_id, named_consent(state, write, terms), call.block.height
        )
    check_expiry(args.expires_ms, call.block.time_ms)
    purposes = normalise_purposes(args.purposes)
    return ReaderGrant(record.record_id, args.reader, purposes, args.expires_ms, call.block.height)


def warrant(state: State, call: Call, args: WarrantArgs) -> None:
    record = require_record(state, args.record_id)
    on_behalf = owner_or_grant_proxy(state, record, call, "grant a reader")
    if args.reader == record.owner:
        raise InvalidArgument("the owner can always read their own record")
    if args.reader in record.readers:
        raise AlreadyAuthorised(f"{format_address(args.reader)} can already read this record")
    _check_readers(state, call, (*record.readers, args.reader))
    grant = _warrant_grant(state, call, record, args)
    numbers = [w.version for w in args.wraps]
    if numbers != sorted(set(numbers)) or not numbers:
        raise InvalidArgument("version wraps must be unique and sorted by version")
    if numbers[-1] != record.version_count or numbers[0] < 1:
        raise InvalidArgument(
            f"wrap the content key of the latest version ({record.version_count}) for the reader"
        )
    for vw in args.wraps:
        version = get_version(state, record.record_id, vw.version)
        assert version is not None
        wraps = {w.reader: w for w in version.wraps}
        wraps[args.reader] = KeyWrap(args.reader, vw.wrapped_key)
        new_wraps = tuple(wraps[r] for r in sorted(wraps))
        check_wraps(new_wraps, wraps.keys())
        save(state, _version_key(record.record_id, vw.version), replace(version, wraps=new_wraps))
    put_reader_grant(state, grant)
    record = replace(record, readers=tuple(sorted((*record.readers, args.reader))))
    append_audit(
        state, call, record, AuditAction.GRANTED, args.reader, record.version_count, on_behalf
    )


def unwarrant(state: State, call: Call, args: UnwarrantArgs) -> None:
    record = require_record(state, args.record_id)
    on_behalf = owner_or_grant_proxy(state, record, call, "revoke a reader")
    was_reader = args.reader in record.readers
    had_research = alc.get_entry(state, args.reader, record.record_id) is not None
    if not was_reader and not had_research:
        raise NotAuthorised(
            f"{format_address(args.reader)} holds no access to record {record.record_id.hex()}"
        )
    if was_reader:
        record = replace(record, readers=tuple(r for r in record.readers if r != args.reader))
        delete_reader_grant(state, record.record_id, args.reader)
        record = append_audit(
            state, call, record, AuditAction.REVOKED, args.reader, record.version_count, on_behalf
        )
    if had_research:
        revoke_research(state, call, record, args.reader, on_behalf)


def revoke_research(
    state: State, call: Call, record: Record, institution: bytes, on_behalf: bytes = b""
) -> Record:
    """Take the record off the institution's access list (ALC) and audit it."""
    removed = alc.remove_entry(state, institution, record.record_id)
    assert removed
    return append_audit(
        state,
        call,
        record,
        AuditAction.RESEARCH_REVOKED,
        institution,
        record.version_count,
        on_behalf,
    )


def _version_readers(
    state: State, call: Call, record: Record, wraps: tuple[KeyWrap, ...]
) -> tuple[tuple[bytes, ...], tuple[bytes, ...], tuple[bytes, ...]]:
    """A new version's readers, and those who leave (grant expired: forward-only, as a
    revoke) and join (a `read` proxy added since, or a reader a standing consent
    requires or the writer's client wrapped for under a consent with codes)."""
    now_ms = call.block.time_ms
    write = WriteContext(record.owner, call.sender, record.resource_type, now_ms)
    required = required_for(state, write)
    require_wrapped_for(wraps, required)
    expired = expired_readers(state, record.record_id, record.readers, set(required), now_ms)
    if call.sender in expired:
        raise NotAuthorised(
            f"the grant of {format_address(call.sender)} on record {record.record_id.hex()} "
            "has expired; the patient renews it with `medchain record set-terms`"
        )
    refuse_expired_wraps(wraps, expired)
    kept = tuple(r for r in record.readers if r not in expired)
    joining = version_grants(state, call, record.record_id, write, kept, wraps)
    for reader in expired:
        delete_reader_grant(state, record.record_id, reader)
    return tuple(sorted((*kept, *joining))), expired, joining


def add_version(state: State, call: Call, args: AddVersionArgs) -> None:
    record = require_record(state, args.record_id)
    if call.sender != record.owner:
        if call.sender not in record.readers:
            raise NotAuthorised(
                "only the owner or a clinician the owner authorised may add a version"
            )
        require_credential(
            state, call.sender, CLINICIAN_ROLES, call.block.time_ms, "add a version to a record"
        )
    check_blob(args.cid, args.ciphertext_hash)
    readers, expired, joining = _version_readers(state, call, record, args.wraps)
    _check_readers(state, call, readers)
    check_wraps(args.wraps, (record.owner, *readers))
    number = record.version_count + 1
    save(
        state,
        _version_key(record.record_id, number),
        RecordVersion(
            record.record_id,
            number,
            args.cid,
            args.ciphertext_hash,
            call.sender,
            call.block.height,
            call.tx_id,
            args.wraps,
        ),
    )
    attach_emergency_wrap(
        state, record.owner, record.record_id, record.resource_type, number, args.emergency
    )
    record = replace(record, version_count=number, readers=readers)
    record = append_audit(state, call, record, AuditAction.VERSIONED, version=number)
    for reader in expired:  # forward-only: it keeps what it could open, nothing new
        record = append_audit(state, call, record, AuditAction.EXPIRED, reader, number)
    for reader in joining:  # it reads from this version on
        record = append_audit(state, call, record, AuditAction.GRANTED, reader, number)


METHODS: Methods = {
    "records.create": (CreateRecordArgs, create),
    "records.warrant": (WarrantArgs, warrant),
    "records.unwarrant": (UnwarrantArgs, unwarrant),
    "records.add_version": (AddVersionArgs, add_version),
}
