"""Key recovery with guardians: a patient who lost their key file gets their account
back with a new key once enough of their guardians approve and a waiting period
passes, during which the old key (if it still exists) can cancel.

The chain never holds the recovery secret: the patient's client splits it among the
guardians (each share sealed to one guardian, stored off chain by CID) and stores a
kit of the patient's encryption secrets under it. Approving, a guardian re-seals
their share to the new key and names its CID; the chain only counts approvals and
enforces the threshold, the one open request per patient and the delay. Completing
moves the account's keys as `keys.rotate` does. Design and threat model:
docs/ACCESS.md, "Key recovery and rotation".
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._emergency_log import notify
from medchain.app._errors import InvalidArgument, RecoveryError, RecoveryNotReady
from medchain.app._keys import NewKeys, check_new_keys, move_keys, require_fresh_key
from medchain.app._records import check_blob
from medchain.app._recovery_log import (
    RecoveryApproval,
    RecoveryPolicy,
    RecoveryRequest,
    RecoveryStatus,
    ShareRef,
    delete_recovery_policy,
    get_recovery_policy,
    get_recovery_request,
    index_new_request,
    open_recovery_request,
    put_recovery_policy,
    put_recovery_request,
)
from medchain.app._registry import Role, get_identity, require_identity
from medchain.app._state import State
from medchain.crypto import format_address
from medchain.types import tagged_hash

MIN_GUARDIANS = 2
MAX_GUARDIANS = 10
MAX_DELAY_MS = 365 * 24 * 3_600_000
RECOVERY_ID_SIZE = 16


@dataclass(frozen=True, slots=True)
class SetRecoveryPolicyArgs:
    guardians: tuple[bytes, ...]
    threshold: int
    delay_ms: int
    kit_cid: str
    kit_hash: bytes
    shares: tuple[ShareRef, ...]


@dataclass(frozen=True, slots=True)
class ClearRecoveryPolicyArgs:
    pass


@dataclass(frozen=True, slots=True)
class RequestRecoveryArgs:
    patient: bytes
    new_public_key: bytes
    new_encryption_key: bytes
    new_ring_key: bytes
    proof: bytes
    """The new key's signature over `rotation_message` for the patient's account."""


@dataclass(frozen=True, slots=True)
class ApproveRecoveryArgs:
    request_id: bytes
    cid: str
    hash: bytes


@dataclass(frozen=True, slots=True)
class RecoveryRequestArgs:
    """`recovery.cancel` and `recovery.complete`: the request acted on."""

    request_id: bytes


def new_recovery_id(sender: bytes, nonce: int) -> bytes:
    return tagged_hash("medchain/recovery", sender, nonce.to_bytes(8, "big"))[:RECOVERY_ID_SIZE]


# -- the patient's policy ------------------------------------------------------------


def set_policy(state: State, call: Call, args: SetRecoveryPolicyArgs) -> None:
    require_identity(state, call.sender, Role.PATIENT)
    _require_no_open_request(state, call.sender, "change the recovery policy")
    _check_guardians(state, call.sender, args.guardians)
    if not MIN_GUARDIANS <= args.threshold <= len(args.guardians):
        raise InvalidArgument(
            f"the threshold must be between {MIN_GUARDIANS} and the number of guardians "
            f"({len(args.guardians)})"
        )
    least = call.block.params.recovery_min_delay_ms
    if not least <= args.delay_ms <= MAX_DELAY_MS:
        raise InvalidArgument(
            f"the waiting period must be between {least} ms (this chain's minimum) and "
            f"{MAX_DELAY_MS} ms"
        )
    check_blob(args.kit_cid, args.kit_hash)
    if tuple(s.guardian for s in args.shares) != args.guardians:
        raise InvalidArgument("give exactly one share per guardian, in guardian order")
    for share in args.shares:
        check_blob(share.cid, share.hash)
    policy = RecoveryPolicy(
        call.sender,
        args.guardians,
        args.threshold,
        args.delay_ms,
        args.kit_cid,
        args.kit_hash,
        args.shares,
        call.block.height,
    )
    put_recovery_policy(state, policy)
    call.emit(
        "recovery.policy_set",
        patient=call.sender,
        guardians=len(args.guardians),
        threshold=args.threshold,
        delay_ms=args.delay_ms,
    )


def _check_guardians(state: State, patient: bytes, guardians: tuple[bytes, ...]) -> None:
    if guardians != tuple(sorted(set(guardians))):
        raise InvalidArgument("guardians must be sorted by address, each once")
    if not MIN_GUARDIANS <= len(guardians) <= MAX_GUARDIANS:
        raise InvalidArgument(f"choose between {MIN_GUARDIANS} and {MAX_GUARDIANS} guardians")
    for guardian in guardians:
        if guardian == patient:
            raise InvalidArgument("a patient cannot be their own guardian")
        identity = require_identity(state, guardian)
        if identity.role is Role.VALIDATOR or not identity.encryption_key:
            raise InvalidArgument(
                f"{format_address(guardian)} has no encryption key to seal a share to; "
                "choose a registered person or organisation"
            )


def clear_policy(state: State, call: Call, args: ClearRecoveryPolicyArgs) -> None:
    del args
    if get_recovery_policy(state, call.sender) is None:
        raise RecoveryError(f"{format_address(call.sender)} has no recovery policy to clear")
    _require_no_open_request(state, call.sender, "clear the recovery policy")
    delete_recovery_policy(state, call.sender)
    call.emit("recovery.policy_cleared", patient=call.sender)


def _require_no_open_request(state: State, patient: bytes, action: str) -> None:
    request = open_recovery_request(state, patient)
    if request is not None:
        raise RecoveryError(
            f"a recovery request ({request.request_id.hex()}) is open: cancel it with "
            f"`medchain recovery cancel` before you {action}"
        )


# -- a request and its approvals ------------------------------------------------------


def request(state: State, call: Call, args: RequestRecoveryArgs) -> None:
    require_identity(state, args.patient, Role.PATIENT)
    policy = _require_policy(state, args.patient)
    if call.sender_key != args.new_public_key or get_identity(state, call.sender) is not None:
        raise RecoveryError(
            "sign a recovery request with the new key file it names (a fresh key that "
            "belongs to no account)"
        )
    _require_no_open_request(state, args.patient, "ask again")
    new = NewKeys(args.new_public_key, args.new_encryption_key, args.new_ring_key, args.proof)
    check_new_keys(state, call.block.chain_id, args.patient, new)
    opened = RecoveryRequest(
        new_recovery_id(call.sender, call.nonce),
        args.patient,
        args.new_public_key,
        args.new_encryption_key,
        args.new_ring_key,
        call.block.height,
        call.block.time_ms,
        (),
        0,
        RecoveryStatus.OPEN,
        0,
    )
    put_recovery_request(state, opened)
    index_new_request(state, opened, policy.guardians)
    _announce(state, call, opened, "requested", f"{policy.threshold} guardians must approve")


def approve(state: State, call: Call, args: ApproveRecoveryArgs) -> None:
    opened = _require_open(state, args.request_id)
    policy = _require_policy(state, opened.patient)
    if call.sender not in policy.guardians:
        raise RecoveryError(
            f"{format_address(call.sender)} is not a recovery guardian of "
            f"{format_address(opened.patient)}"
        )
    if any(a.guardian == call.sender for a in opened.approvals):
        raise RecoveryError("this guardian has already approved the request")
    check_blob(args.cid, args.hash)
    approval = RecoveryApproval(call.sender, args.cid, args.hash, call.block.height)
    approvals = tuple(sorted((*opened.approvals, approval), key=lambda a: a.guardian))
    ready_ms = opened.ready_ms
    if not ready_ms and len(approvals) >= policy.threshold:
        ready_ms = call.block.time_ms + policy.delay_ms
    updated = replace(opened, approvals=approvals, ready_ms=ready_ms)
    put_recovery_request(state, updated)
    detail = f"{len(approvals)} of {policy.threshold} approvals"
    _announce(state, call, updated, "approved", detail)


def cancel(state: State, call: Call, args: RecoveryRequestArgs) -> None:
    opened = _require_open(state, args.request_id)
    if call.sender != opened.patient:
        raise RecoveryError(
            "only the patient's current key cancels a recovery request; a guardian who "
            "changed their mind simply does not approve"
        )
    closed = replace(opened, status=RecoveryStatus.CANCELLED, closed_height=call.block.height)
    put_recovery_request(state, closed)
    _announce(state, call, closed, "cancelled", "cancelled by the account's current key")


def complete(state: State, call: Call, args: RecoveryRequestArgs) -> None:
    opened = _require_open(state, args.request_id)
    if call.sender_key != opened.new_public_key:
        raise RecoveryError("complete a recovery with the new key file the request names")
    policy = _require_policy(state, opened.patient)
    if not opened.ready_ms:
        raise RecoveryNotReady(
            f"{len(opened.approvals)} of the {policy.threshold} guardian approvals needed "
            "so far; ask more guardians to approve"
        )
    if call.block.time_ms < opened.ready_ms:
        raise RecoveryNotReady(
            f"the waiting period runs until block time {opened.ready_ms} ms "
            f"({opened.ready_ms - call.block.time_ms} ms from now); complete it afterwards"
        )
    require_fresh_key(state, opened.new_public_key)
    identity = require_identity(state, opened.patient, Role.PATIENT)
    new = NewKeys(opened.new_public_key, opened.new_encryption_key, opened.new_ring_key, b"")
    move_keys(state, call, identity, new, "recovery")
    closed = replace(opened, status=RecoveryStatus.COMPLETED, closed_height=call.block.height)
    put_recovery_request(state, closed)
    _announce(state, call, closed, "completed", "the account's keys were replaced")


def _require_policy(state: State, patient: bytes) -> RecoveryPolicy:
    policy = get_recovery_policy(state, patient)
    if policy is None:
        raise RecoveryError(
            f"{format_address(patient)} has no recovery policy: without guardians chosen "
            "beforehand a lost key cannot be recovered"
        )
    return policy


def _require_open(state: State, request_id: bytes) -> RecoveryRequest:
    found = get_recovery_request(state, request_id)
    if found is None:
        raise RecoveryError(f"no recovery request {request_id.hex()} on this chain")
    if found.status is not RecoveryStatus.OPEN:
        raise RecoveryError(f"recovery request {request_id.hex()} is {found.status.value}")
    return found


def _announce(state: State, call: Call, request: RecoveryRequest, step: str, detail: str) -> None:
    """An event, and a notification the patient (and their proxies) will see."""
    call.emit(
        f"recovery.{step}",
        request=request.request_id,
        patient=request.patient,
        actor=call.sender,
        ready_ms=request.ready_ms,
    )
    notify(state, call, request.patient, f"recovery.{step}", request.request_id, "", detail)


METHODS: Methods = {
    "recovery.set_policy": (SetRecoveryPolicyArgs, set_policy),
    "recovery.clear_policy": (ClearRecoveryPolicyArgs, clear_policy),
    "recovery.request": (RequestRecoveryArgs, request),
    "recovery.approve": (ApproveRecoveryArgs, approve),
    "recovery.cancel": (RecoveryRequestArgs, cancel),
    "recovery.complete": (RecoveryRequestArgs, complete),
}
