"""Break-glass: a credentialed clinician opens an unconscious patient's emergency set,
and no single party can open it alone.

The patient's client splits an emergency key t-of-n among the member organisations
(`emergency.set_policy`: each share sealed to an organisation's account, with its public
commitment) and wraps each set record's content key to the key's point. A valid
clinician opens a request with a reason (`emergency.open`): the chain snapshots the
set's wraps as they stand at that height, so later records stay closed. Each
organisation account then answers (`emergency.answer`) with one partial decryption per
snapshotted wrap and its proof, sealed to the clinician alone: published partials would
let anyone combine them. The clinician checks each proof against the commitment and
combines any t. Answers stop at the request's expiry, each organisation answers once,
and every step is an event, a notification to the patient and an entry in the
organisation's list of break-glass by its staff.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._credentials import CLINICIAN_ROLES, require_credential, valid_credential
from medchain.app._emergency_set import (
    EmergencyPolicy,
    EmergencyPolicyArgs,
    EmergencyWrapArgs,
    SealedShare,
    attach_emergency_wrap,
    emergency_entries,
    get_policy,
    set_policy,
)
from medchain.app._errors import EmergencyError
from medchain.app._orgs import org_of_account
from medchain.app._records import owner_or_grant_proxy, require_record
from medchain.app._registry import Role, require_identity
from medchain.app._state import State, load, save
from medchain.crypto import CONTENT_OVERHEAD, WRAPPED_KEY_SIZE, format_address, tagged_hash

REQUEST_ID_SIZE = 16
MAX_REASON_CHARS = 280
MAX_EMERGENCY_ITEMS = 128
"""Most wraps one request snapshots (the newest): bounds an answer's size."""
PARTIAL_SIZE = 96
"""One partial in an answer: D_i (32) || DLEQ challenge (32) || response (32)."""


@dataclass(frozen=True, slots=True)
class SnapshotItem:
    record_id: bytes
    version: int
    ephemeral: bytes
    sealed_key: bytes


@dataclass(frozen=True, slots=True)
class OpenArgs:
    patient: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class AnswerArgs:
    request_id: bytes
    wrapped_key: bytes
    """A fresh key, wrapped (HPKE) for the clinician, that `sealed_partials` is under."""
    sealed_partials: bytes
    """PARTIAL_SIZE bytes per snapshot item, in order, AES-256-GCM sealed."""


@dataclass(frozen=True, slots=True)
class EmergencyRequest:
    request_id: bytes
    patient: bytes
    clinician: bytes
    clinician_org: str
    """The organisation whose credential let the clinician open it."""
    reason: str
    opened_height: int
    opened_ms: int
    expires_ms: int
    threshold: int
    public_key: bytes
    shares: tuple[SealedShare, ...]
    """The policy's shares when it opened: share i (from 1) is the i-th."""
    items: tuple[SnapshotItem, ...]
    answered: tuple[str, ...]
    """Org ids that answered, sorted."""


@dataclass(frozen=True, slots=True)
class EmergencyAnswer:
    request_id: bytes
    org_id: str
    index: int
    account: bytes
    height: int
    tx_id: bytes
    wrapped_key: bytes
    sealed_partials: bytes


@dataclass(frozen=True, slots=True)
class Notification:
    """Something a patient (and their proxies) must see: a break-glass on their data."""

    seq: int
    height: int
    time_ms: int
    tx_id: bytes
    kind: str
    """emergency.opened | emergency.answered"""
    request_id: bytes
    actor: bytes
    org_id: str
    detail: str


@dataclass(frozen=True, slots=True)
class WrapRecordArgs:
    """Add a record made before the policy (or under an older key) to the emergency set:
    its latest version's content key wrapped to the current emergency key."""

    record_id: bytes
    wrap: EmergencyWrapArgs


@dataclass(frozen=True, slots=True)
class _Ids:
    ids: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class _Count:
    value: int


# -- storage ------------------------------------------------------------------------


def _request_key(request_id: bytes) -> bytes:
    return b"emr/" + request_id


def _answer_key(request_id: bytes, index: int) -> bytes:
    return b"ema/" + request_id + index.to_bytes(2, "big")


def _by_patient_key(patient: bytes) -> bytes:
    return b"emrp/" + patient


def _by_org_key(org_id: str) -> bytes:
    return b"emro/" + org_id.encode()


_OPEN_KEY = b"emopen"
"""Requests that may not have expired yet, oldest first: what organisations poll."""


def _notification_key(patient: bytes, seq: int) -> bytes:
    return b"emn/" + patient + seq.to_bytes(4, "big")


def _notification_count_key(patient: bytes) -> bytes:
    return b"emnc/" + patient


def _ids(state: State, key: bytes) -> tuple[bytes, ...]:
    found = load(state, key, _Ids)
    return () if found is None else found.ids


def _append_id(state: State, key: bytes, item: bytes) -> None:
    save(state, key, _Ids((*_ids(state, key), item)))


def new_request_id(sender: bytes, nonce: int) -> bytes:
    return tagged_hash("medchain/emergency-request", sender, nonce.to_bytes(8, "big"))[
        :REQUEST_ID_SIZE
    ]


# -- queries ------------------------------------------------------------------------


def get_emergency_request(state: State, request_id: bytes) -> EmergencyRequest | None:
    return load(state, _request_key(request_id), EmergencyRequest)


def _requests(state: State, key: bytes) -> list[EmergencyRequest]:
    found = [get_emergency_request(state, r) for r in _ids(state, key)]
    return [r for r in found if r is not None]


def emergency_requests_of(state: State, patient: bytes) -> list[EmergencyRequest]:
    """Every break-glass on the patient's set, oldest first."""
    return _requests(state, _by_patient_key(patient))


def emergency_requests_by_org(state: State, org_id: str) -> list[EmergencyRequest]:
    """Every break-glass by the organisation's staff, oldest first, for its review."""
    return _requests(state, _by_org_key(org_id))


def pending_emergency_requests(state: State, org_id: str, now_ms: int) -> list[EmergencyRequest]:
    """Requests still open at `now_ms` holding a share of `org_id` it has not answered:
    what the organisation's account has to answer."""
    return [
        r
        for r in _requests(state, _OPEN_KEY)
        if now_ms < r.expires_ms and share_index(r, org_id) and org_id not in r.answered
    ]


def share_index(request: EmergencyRequest, org_id: str) -> int:
    """The index (from 1) of `org_id`'s share in the request, 0 if it holds none."""
    for index, share in enumerate(request.shares, start=1):
        if share.org_id == org_id:
            return index
    return 0


def emergency_answers(state: State, request: EmergencyRequest) -> list[EmergencyAnswer]:
    """The request's answers, by share index."""
    found = [
        load(state, _answer_key(request.request_id, index), EmergencyAnswer)
        for index in range(1, len(request.shares) + 1)
    ]
    return [a for a in found if a is not None]


def notifications_of(state: State, patient: bytes) -> list[Notification]:
    count = _notification_count(state, patient)
    found = [load(state, _notification_key(patient, s), Notification) for s in range(count)]
    return [n for n in found if n is not None]


def _notify(
    state: State,
    call: Call,
    patient: bytes,
    kind: str,
    request_id: bytes,
    org_id: str,
    detail: str,
) -> None:
    seq = _notification_count(state, patient)
    note = Notification(
        seq,
        call.block.height,
        call.block.time_ms,
        call.tx_id,
        kind,
        request_id,
        call.sender,
        org_id,
        detail,
    )
    save(state, _notification_key(patient, seq), note)
    save(state, _notification_count_key(patient), _Count(seq + 1))


def _notification_count(state: State, patient: bytes) -> int:
    found = load(state, _notification_count_key(patient), _Count)
    return 0 if found is None else found.value


# -- methods ------------------------------------------------------------------------


def wrap_record(state: State, call: Call, args: WrapRecordArgs) -> None:
    """The owner (or their `grant` proxy) puts an existing record's latest version into
    the emergency set."""
    record = require_record(state, args.record_id)
    on_behalf = owner_or_grant_proxy(state, record, call, "put a record into the emergency set")
    attach_emergency_wrap(
        state,
        record.owner,
        record.record_id,
        record.resource_type,
        record.version_count,
        (args.wrap,),
    )
    by_proxy = {"proxy": call.sender} if on_behalf else {}
    call.emit(
        "emergency.wrapped",
        record=record.record_id,
        patient=record.owner,
        version=record.version_count,
        **by_proxy,
    )


def open_request(state: State, call: Call, args: OpenArgs) -> None:
    """A valid clinician opens the patient's emergency set as it stands now."""
    now = call.block.time_ms
    credential = require_credential(
        state, call.sender, CLINICIAN_ROLES, now, "open a patient's emergency set"
    )
    if not require_identity(state, call.sender).encryption_key:
        raise EmergencyError("the clinician needs an encryption key to receive the answers")
    reason = args.reason.strip()
    if not reason or len(reason) > MAX_REASON_CHARS:
        raise EmergencyError(
            f"state the emergency's reason (1 to {MAX_REASON_CHARS} characters): it is "
            "shown to the patient and to the organisation's reviewers"
        )
    require_identity(state, args.patient, Role.PATIENT)
    policy = get_policy(state, args.patient)
    if policy is None or not policy.enabled:
        raise EmergencyError(
            f"{format_address(args.patient)} has no emergency policy on: there is no "
            "emergency set to open"
        )
    items = _snapshot(state, policy)
    if not items:
        raise EmergencyError(f"{format_address(args.patient)}'s emergency set holds no records")
    request = EmergencyRequest(
        request_id=new_request_id(call.sender, call.nonce),
        patient=args.patient,
        clinician=call.sender,
        clinician_org=credential.org_id,
        reason=reason,
        opened_height=call.block.height,
        opened_ms=now,
        expires_ms=now + call.block.params.emergency_window_ms,
        threshold=policy.threshold,
        public_key=policy.public_key,
        shares=policy.shares,
        items=items,
        answered=(),
    )
    save(state, _request_key(request.request_id), request)
    _append_id(state, _by_patient_key(args.patient), request.request_id)
    _append_id(state, _by_org_key(credential.org_id), request.request_id)
    still_open = [r.request_id for r in _requests(state, _OPEN_KEY) if now < r.expires_ms]
    save(state, _OPEN_KEY, _Ids((*still_open, request.request_id)))
    _notify(
        state, call, args.patient, "emergency.opened", request.request_id, credential.org_id, reason
    )
    call.emit(
        "emergency.opened",
        request=request.request_id,
        patient=args.patient,
        clinician=call.sender,
        org=credential.org_id,
        items=len(items),
        expires_ms=request.expires_ms,
    )


def _snapshot(state: State, policy: EmergencyPolicy) -> tuple[SnapshotItem, ...]:
    """The newest wraps under the policy's key, of types in its set."""
    entries = [
        e
        for e in emergency_entries(state, policy.patient)
        if e.public_key == policy.public_key and e.resource_type in policy.resource_types
    ]
    return tuple(
        SnapshotItem(e.record_id, e.version, e.ephemeral, e.sealed_key)
        for e in entries[-MAX_EMERGENCY_ITEMS:]
    )


def answer(state: State, call: Call, args: AnswerArgs) -> None:
    """A member organisation's account releases its partials, sealed to the clinician."""
    request = get_emergency_request(state, args.request_id)
    if request is None:
        raise EmergencyError(f"no emergency request {args.request_id.hex()} on this chain")
    now = call.block.time_ms
    if now >= request.expires_ms:
        raise EmergencyError(
            f"emergency request {request.request_id.hex()} expired at block time "
            f"{request.expires_ms}; the clinician must open a new one"
        )
    org = org_of_account(state, call.sender)
    index = share_index(request, org.org_id) if org is not None else 0
    if org is None or not index:
        raise EmergencyError(
            f"{format_address(call.sender)} is not the account of a member organisation "
            "holding a share of this patient's emergency key"
        )
    if org.org_id in request.answered:
        raise EmergencyError(f"{org.org_id!r} already answered this request")
    if valid_credential(state, request.clinician, CLINICIAN_ROLES, now) is None:
        raise EmergencyError(
            "the clinician who opened this request no longer holds a valid credential"
        )
    _check_answer_size(args, len(request.items))
    save(
        state,
        _answer_key(request.request_id, index),
        EmergencyAnswer(
            request.request_id,
            org.org_id,
            index,
            call.sender,
            call.block.height,
            call.tx_id,
            args.wrapped_key,
            args.sealed_partials,
        ),
    )
    answered = tuple(sorted((*request.answered, org.org_id)))
    save(state, _request_key(request.request_id), replace(request, answered=answered))
    _notify(
        state,
        call,
        request.patient,
        "emergency.answered",
        request.request_id,
        org.org_id,
        f"{len(answered)} of {request.threshold}",
    )
    call.emit(
        "emergency.answered",
        request=request.request_id,
        patient=request.patient,
        org=org.org_id,
        answers=len(answered),
        threshold=request.threshold,
    )


def _check_answer_size(args: AnswerArgs, items: int) -> None:
    if len(args.wrapped_key) != WRAPPED_KEY_SIZE:
        raise EmergencyError(f"an answer's wrapped key is {WRAPPED_KEY_SIZE} bytes")
    expected = CONTENT_OVERHEAD + PARTIAL_SIZE * items
    if len(args.sealed_partials) != expected:
        raise EmergencyError(
            f"an answer to a request of {items} records seals {items} partials "
            f"({expected} bytes), got {len(args.sealed_partials)} bytes"
        )


METHODS: Methods = {
    "emergency.set_policy": (EmergencyPolicyArgs, set_policy),
    "emergency.wrap": (WrapRecordArgs, wrap_record),
    "emergency.open": (OpenArgs, open_request),
    "emergency.answer": (AnswerArgs, answer),
}
