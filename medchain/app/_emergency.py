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

from dataclasses import dataclass

from medchain.app._context import Call, Methods
from medchain.app._credentials import CLINICIAN_ROLES, require_credential, valid_credential
from medchain.app._emergency_log import (
    EmergencyAnswer,
    EmergencyRequest,
    SnapshotItem,
    get_emergency_request,
    notify,
    record_answer,
    record_request,
    share_index,
)
from medchain.app._emergency_set import (
    EmergencyPolicy,
    EmergencyPolicyArgs,
    EmergencyWrapArgs,
    attach_emergency_wrap,
    emergency_entries,
    get_policy,
    set_policy,
)
from medchain.app._errors import EmergencyError
from medchain.app._orgs import org_of_account
from medchain.app._records import owner_or_grant_proxy, require_record
from medchain.app._registry import Role, require_identity
from medchain.app._state import State
from medchain.crypto import CONTENT_OVERHEAD, WRAPPED_KEY_SIZE, format_address, tagged_hash

REQUEST_ID_SIZE = 16
MAX_REASON_CHARS = 280
MAX_EMERGENCY_ITEMS = 128
"""Most wraps one request snapshots (the newest): bounds an answer's size."""
PARTIAL_SIZE = 96
"""One partial in an answer: D_i (32) || DLEQ challenge (32) || response (32)."""


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
class WrapRecordArgs:
    """Add a record made before the policy (or under an older key) to the emergency set:
    its latest version's content key wrapped to the current emergency key."""

    record_id: bytes
    wrap: EmergencyWrapArgs


def new_request_id(sender: bytes, nonce: int) -> bytes:
    return tagged_hash("medchain/emergency-request", sender, nonce.to_bytes(8, "big"))[
        :REQUEST_ID_SIZE
    ]


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
    record_request(state, request)
    notify(
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


def answer_request(state: State, call: Call, args: AnswerArgs) -> None:
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
    answer = EmergencyAnswer(
        request.request_id,
        org.org_id,
        index,
        call.sender,
        call.block.height,
        call.tx_id,
        args.wrapped_key,
        args.sealed_partials,
    )
    request = record_answer(state, request, answer)
    notify(
        state,
        call,
        request.patient,
        "emergency.answered",
        request.request_id,
        org.org_id,
        f"{len(request.answered)} of {request.threshold}",
    )
    call.emit(
        "emergency.answered",
        request=request.request_id,
        patient=request.patient,
        org=org.org_id,
        answers=len(request.answered),
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
    "emergency.answer": (AnswerArgs, answer_request),
}
