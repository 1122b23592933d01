"""What the recovery contract keeps: each patient's policy, every request with its
approvals, and the indexes the API reads (a patient's requests, a guardian's)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from medchain.app._state import State, load, save

MAX_GUARDIAN_SCAN = 256
"""Most of a guardian's latest requests the open-request query looks through."""


@dataclass(frozen=True, slots=True)
class ShareRef:
    """One guardian's share of the recovery secret, sealed to that guardian, by CID."""

    guardian: bytes
    cid: str
    hash: bytes


@dataclass(frozen=True, slots=True)
class RecoveryPolicy:
    patient: bytes
    guardians: tuple[bytes, ...]
    """Sorted addresses, 2..10, never the patient."""
    threshold: int
    delay_ms: int
    """Block time between the threshold of approvals and the earliest completion."""
    kit_cid: str
    """The recovery kit: the patient's encryption secrets under the recovery secret."""
    kit_hash: bytes
    shares: tuple[ShareRef, ...]
    """One per guardian, in guardian order."""
    set_height: int


class RecoveryStatus(enum.StrEnum):
    OPEN = "open"
    CANCELLED = "cancelled"
    COMPLETED = "completed"


@dataclass(frozen=True, slots=True)
class RecoveryApproval:
    guardian: bytes
    cid: str
    """The guardian's share re-sealed to the request's new encryption key."""
    hash: bytes
    height: int


@dataclass(frozen=True, slots=True)
class RecoveryRequest:
    request_id: bytes
    patient: bytes
    new_public_key: bytes
    new_encryption_key: bytes
    new_ring_key: bytes
    requested_height: int
    requested_ms: int
    approvals: tuple[RecoveryApproval, ...]
    """Sorted by guardian."""
    ready_ms: int
    """0 until the threshold of approvals is reached; then that block time + delay_ms."""
    status: RecoveryStatus
    closed_height: int


@dataclass(frozen=True, slots=True)
class _Id:
    value: bytes


@dataclass(frozen=True, slots=True)
class _Count:
    value: int


def _policy_key(patient: bytes) -> bytes:
    return b"rcp/" + patient


def _request_key(request_id: bytes) -> bytes:
    return b"rcr/" + request_id


def _open_key(patient: bytes) -> bytes:
    return b"rco/" + patient


def _list_count_key(prefix: bytes, owner: bytes) -> bytes:
    return prefix + b"n/" + owner


def _list_entry_key(prefix: bytes, owner: bytes, seq: int) -> bytes:
    return prefix + b"/" + owner + seq.to_bytes(4, "big")


_BY_PATIENT = b"rcrp"
_BY_GUARDIAN = b"rcrg"


def get_recovery_policy(state: State, patient: bytes) -> RecoveryPolicy | None:
    return load(state, _policy_key(patient), RecoveryPolicy)


def put_recovery_policy(state: State, policy: RecoveryPolicy) -> None:
    save(state, _policy_key(policy.patient), policy)


def delete_recovery_policy(state: State, patient: bytes) -> None:
    state.delete(_policy_key(patient))


def get_recovery_request(state: State, request_id: bytes) -> RecoveryRequest | None:
    return load(state, _request_key(request_id), RecoveryRequest)


def open_recovery_request(state: State, patient: bytes) -> RecoveryRequest | None:
    """The patient's open request, if any (one at a time)."""
    found = load(state, _open_key(patient), _Id)
    return None if found is None else get_recovery_request(state, found.value)


def put_recovery_request(state: State, request: RecoveryRequest) -> None:
    """Save `request`, keeping the patient's open-request marker in step with it."""
    save(state, _request_key(request.request_id), request)
    if request.status is RecoveryStatus.OPEN:
        save(state, _open_key(request.patient), _Id(request.request_id))
    else:
        state.delete(_open_key(request.patient))


def index_new_request(state: State, request: RecoveryRequest, guardians: tuple[bytes, ...]) -> None:
    """List a new request under its patient and under each guardian asked to approve."""
    _append(state, _BY_PATIENT, request.patient, request.request_id)
    for guardian in guardians:
        _append(state, _BY_GUARDIAN, guardian, request.request_id)


def recovery_requests_of(state: State, patient: bytes) -> list[RecoveryRequest]:
    """Every recovery request for `patient`, oldest first."""
    return _requests(state, _BY_PATIENT, patient, 0)


def guardian_recovery_requests(state: State, guardian: bytes) -> list[RecoveryRequest]:
    """The open requests `guardian` is asked to approve (among their latest
    `MAX_GUARDIAN_SCAN`), oldest first."""
    latest = _requests(state, _BY_GUARDIAN, guardian, MAX_GUARDIAN_SCAN)
    return [r for r in latest if r.status is RecoveryStatus.OPEN]


def _count(state: State, prefix: bytes, owner: bytes) -> int:
    found = load(state, _list_count_key(prefix, owner), _Count)
    return 0 if found is None else found.value


def _append(state: State, prefix: bytes, owner: bytes, request_id: bytes) -> None:
    seq = _count(state, prefix, owner)
    save(state, _list_entry_key(prefix, owner, seq), _Id(request_id))
    save(state, _list_count_key(prefix, owner), _Count(seq + 1))


def _requests(state: State, prefix: bytes, owner: bytes, limit: int) -> list[RecoveryRequest]:
    count = _count(state, prefix, owner)
    start = max(0, count - limit) if limit else 0
    found: list[RecoveryRequest] = []
    for seq in range(start, count):
        entry = load(state, _list_entry_key(prefix, owner, seq), _Id)
        request = None if entry is None else get_recovery_request(state, entry.value)
        assert request is not None, "recovery request index has a hole"
        found.append(request)
    return found
