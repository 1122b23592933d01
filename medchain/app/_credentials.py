"""Credentials: a member organisation vouches that an account holds a role (doctor,
nurse, ..., validator) until an expiry. Contracts check a valid credential instead
of a role the account gave itself. One credential per (subject, organisation), with
its whole history on chain; it stops being valid when it expires, is suspended or
revoked, or when its organisation leaves the consortium."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._errors import InvalidArgument, NotCredentialed
from medchain.app._indexes import CountedSet
from medchain.app._orgs import get_organisation, require_admin
from medchain.app._state import State, load, save
from medchain.crypto import ADDRESS_SIZE, format_address

MAX_CREDENTIAL_NAME_CHARS = 128
MAX_CREDENTIAL_REASON_CHARS = 256


class CredentialRole(enum.StrEnum):
    DOCTOR = "doctor"
    NURSE = "nurse"
    PHARMACIST = "pharmacist"
    RESEARCHER = "researcher"
    DEVICE = "device"
    GATEWAY = "gateway"
    VALIDATOR = "validator"


CLINICIAN_ROLES = (CredentialRole.DOCTOR, CredentialRole.NURSE, CredentialRole.PHARMACIST)


class CredentialStatus(enum.StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True)
class Credential:
    subject: bytes
    org_id: str
    role: CredentialRole
    name: str
    """The public display name the organisation vouches for."""
    issued_height: int
    expires_ms: int
    """Block time after which it is no longer valid; 0 = never."""
    status: CredentialStatus
    history_count: int


@dataclass(frozen=True, slots=True)
class CredentialEvent:
    seq: int
    height: int
    time_ms: int
    tx_id: bytes
    action: str
    """issued | renewed | suspended | reinstated | revoked"""
    actor: bytes
    expires_ms: int
    reason: str


@dataclass(frozen=True, slots=True)
class IssueArgs:
    subject: bytes
    role: CredentialRole
    name: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class CredentialActionArgs:
    subject: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class _Index:
    keys: tuple[bytes, ...]
    """Org ids (a subject's credentials) or subjects (an organisation's staff), sorted."""


def _credential_key(subject: bytes, org_id: str) -> bytes:
    return b"cred/" + subject + org_id.encode()


def _history_key(subject: bytes, org_id: str, seq: int) -> bytes:
    return b"credh/" + subject + seq.to_bytes(8, "big") + org_id.encode()


def _subject_index_key(subject: bytes) -> bytes:
    return b"creds/" + subject


_STAFF = CountedSet(b"staff/")
"""Per organisation: every account it ever credentialed (a hospital's staff grows
without a small bound, so one key per member)."""


def _index(state: State, key: bytes) -> tuple[bytes, ...]:
    found = load(state, key, _Index)
    return found.keys if found is not None else ()


def _add_to_index(state: State, key: bytes, item: bytes) -> None:
    save(state, key, _Index(tuple(sorted({*_index(state, key), item}))))


def get_credential(state: State, subject: bytes, org_id: str) -> Credential | None:
    return load(state, _credential_key(subject, org_id), Credential)


def credentials_of(state: State, subject: bytes) -> list[Credential]:
    """Every credential of `subject`, by org id."""
    found = [
        get_credential(state, subject, org_id.decode())
        for org_id in _index(state, _subject_index_key(subject))
    ]
    return [c for c in found if c is not None]


def staff_of(state: State, org_id: str) -> list[Credential]:
    """Every credential `org_id` issued, by subject."""
    found = [
        get_credential(state, subject, org_id) for subject in _STAFF.items(state, org_id.encode())
    ]
    return [c for c in found if c is not None]


def credential_history(state: State, credential: Credential) -> list[CredentialEvent]:
    """What happened to `credential`, oldest first."""
    found = [
        load(state, _history_key(credential.subject, credential.org_id, seq), CredentialEvent)
        for seq in range(credential.history_count)
    ]
    return [e for e in found if e is not None]


def credential_is_valid(state: State, credential: Credential, now_ms: int) -> bool:
    """Active, unexpired at block time `now_ms`, and issued by a current member."""
    org = get_organisation(state, credential.org_id)
    return (
        credential.status is CredentialStatus.ACTIVE
        and (credential.expires_ms == 0 or now_ms < credential.expires_ms)
        and org is not None
        and org.member
    )


def valid_credential(
    state: State, subject: bytes, roles: Iterable[CredentialRole], now_ms: int
) -> Credential | None:
    """The first (by org id) credential of `subject` for one of `roles` that is valid
    at block time `now_ms`, if any."""
    wanted = set(roles)
    for credential in credentials_of(state, subject):
        if credential.role in wanted and credential_is_valid(state, credential, now_ms):
            return credential
    return None


def require_credential(
    state: State,
    subject: bytes,
    roles: Iterable[CredentialRole],
    now_ms: int,
    action: str,
) -> Credential:
    """A valid credential for one of `roles`, or NotCredentialed saying why not."""
    wanted = tuple(roles)
    found = valid_credential(state, subject, wanted, now_ms)
    if found is not None:
        return found
    names = " or ".join(r.value for r in wanted)
    who = format_address(subject)
    held = [c for c in credentials_of(state, subject) if c.role in wanted]
    if not held:
        raise NotCredentialed(
            f"{who} holds no {names} credential, needed to {action}; an organisation's "
            "admin credentials it with `medchain org credential`"
        )
    raise NotCredentialed(f"{who} cannot {action}: {_why_invalid(state, held[0], now_ms)}")


def _why_invalid(state: State, credential: Credential, now_ms: int) -> str:
    org = get_organisation(state, credential.org_id)
    by = f"its {credential.role.value} credential from {credential.org_id!r}"
    if org is None or not org.member:
        left = org.left_height if org is not None else 0
        return (
            f"{by} lapsed when the organisation left the consortium at height {left}; "
            "ask a member organisation for a credential"
        )
    if credential.status is not CredentialStatus.ACTIVE:
        last = credential_history(state, credential)[-1]
        verb = credential.status.value
        reason = f" ({last.reason})" if last.reason else ""
        remedy = (
            "ask its admins to reinstate it"
            if credential.status is CredentialStatus.SUSPENDED
            else "a revoked credential is final; ask another organisation"
        )
        return f"{by} was {verb} by {format_address(last.actor)}{reason}; {remedy}"
    return f"{by} expired at block time {credential.expires_ms}; ask its admins to renew it"


def _record(
    state: State, call: Call, credential: Credential, action: str, reason: str
) -> Credential:
    """Store `credential` with one more history event, and emit the event."""
    event = CredentialEvent(
        seq=credential.history_count,
        height=call.block.height,
        time_ms=call.block.time_ms,
        tx_id=call.tx_id,
        action=action,
        actor=call.sender,
        expires_ms=credential.expires_ms,
        reason=reason,
    )
    save(state, _history_key(credential.subject, credential.org_id, event.seq), event)
    credential = replace(credential, history_count=event.seq + 1)
    save(state, _credential_key(credential.subject, credential.org_id), credential)
    call.emit(
        f"credential.{action}",
        subject=credential.subject,
        org=credential.org_id,
        role=credential.role.value,
        admin=call.sender,
    )
    return credential


def issue(state: State, call: Call, args: IssueArgs) -> None:
    """A new credential, or the renewal of an active or suspended one."""
    org = require_admin(state, call.sender)
    if len(args.subject) != ADDRESS_SIZE:
        raise InvalidArgument("the subject must be a 20-byte account address")
    if not args.name.strip() or len(args.name) > MAX_CREDENTIAL_NAME_CHARS:
        raise InvalidArgument(
            f"a credential needs a display name of 1 to {MAX_CREDENTIAL_NAME_CHARS} characters"
        )
    if args.expires_ms and args.expires_ms <= call.block.time_ms:
        raise InvalidArgument(
            f"the expiry {args.expires_ms} is not after the block time {call.block.time_ms}; "
            "give a later one, or 0 for none"
        )
    current = get_credential(state, args.subject, org.org_id)
    if current is not None and current.status is CredentialStatus.REVOKED:
        raise InvalidArgument(
            f"{org.org_id!r} revoked the credential of {format_address(args.subject)}; "
            "a revoked credential is final"
        )
    fresh = Credential(
        args.subject,
        org.org_id,
        args.role,
        args.name,
        call.block.height,
        args.expires_ms,
        CredentialStatus.ACTIVE,
        0,
    )
    if current is None:
        _add_to_index(state, _subject_index_key(args.subject), org.org_id.encode())
        _STAFF.add(state, org.org_id.encode(), args.subject)
        _record(state, call, fresh, "issued", "")
        return
    renewed = replace(current, role=args.role, name=args.name, expires_ms=args.expires_ms)
    _record(state, call, renewed, "renewed", "")


_TRANSITIONS = {
    "suspended": ((CredentialStatus.ACTIVE,), CredentialStatus.SUSPENDED),
    "reinstated": ((CredentialStatus.SUSPENDED,), CredentialStatus.ACTIVE),
    "revoked": ((CredentialStatus.ACTIVE, CredentialStatus.SUSPENDED), CredentialStatus.REVOKED),
}


def _change_status(state: State, call: Call, args: CredentialActionArgs, action: str) -> None:
    org = require_admin(state, call.sender)
    if len(args.reason) > MAX_CREDENTIAL_REASON_CHARS:
        raise InvalidArgument(f"a reason is limited to {MAX_CREDENTIAL_REASON_CHARS} characters")
    current = get_credential(state, args.subject, org.org_id)
    if current is None:
        raise InvalidArgument(
            f"{org.org_id!r} has issued no credential to {format_address(args.subject)}"
        )
    allowed, target = _TRANSITIONS[action]
    if current.status not in allowed:
        raise InvalidArgument(
            f"the credential of {format_address(args.subject)} from {org.org_id!r} is "
            f"{current.status.value}; it cannot be {action}"
        )
    _record(state, call, replace(current, status=target), action, args.reason)


def suspend(state: State, call: Call, args: CredentialActionArgs) -> None:
    _change_status(state, call, args, "suspended")


def reinstate(state: State, call: Call, args: CredentialActionArgs) -> None:
    _change_status(state, call, args, "reinstated")


def revoke(state: State, call: Call, args: CredentialActionArgs) -> None:
    _change_status(state, call, args, "revoked")


METHODS: Methods = {
    "credentials.issue": (IssueArgs, issue),
    "credentials.suspend": (CredentialActionArgs, suspend),
    "credentials.reinstate": (CredentialActionArgs, reinstate),
    "credentials.revoke": (CredentialActionArgs, revoke),
}
