"""The break-glass log: every emergency request, its answers and the notifications
they raise, and the queries that read them.

What the chain remembers of a break-glass, apart from the rules that write it
(`_emergency`): a request keeps its own copy of the policy's shares and the snapshot of
the set, so a later policy change does not alter what it opened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from medchain.app._context import Call
from medchain.app._emergency_set import SealedShare
from medchain.app._indexes import CountedList
from medchain.app._state import State, load, save


@dataclass(frozen=True, slots=True)
class SnapshotItem:
    record_id: bytes
    version: int
    ephemeral: bytes
    sealed_key: bytes


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


_BY_PATIENT = CountedList(b"emrp/")
"""Per patient: every break-glass on their set, oldest first."""
_BY_ORG = CountedList(b"emro/")
"""Per organisation: every break-glass by its staff, oldest first."""


_OPEN_KEY = b"emopen"
"""Requests that may not have expired yet, oldest first: what organisations poll."""


def _notification_key(patient: bytes, seq: int) -> bytes:
    return b"emn/" + patient + seq.to_bytes(4, "big")


def _notification_count_key(patient: bytes) -> bytes:
    return b"emnc/" + patient


def _ids(state: State, key: bytes) -> tuple[bytes, ...]:
    found = load(state, key, _Ids)
    return () if found is None else found.ids


# -- queries ------------------------------------------------------------------------


def get_emergency_request(state: State, request_id: bytes) -> EmergencyRequest | None:
    return load(state, _request_key(request_id), EmergencyRequest)


def _requests(state: State, key: bytes) -> list[EmergencyRequest]:
    return _request_list(state, _ids(state, key))


def _request_list(state: State, ids: Iterable[bytes]) -> list[EmergencyRequest]:
    found = [get_emergency_request(state, r) for r in ids]
    return [r for r in found if r is not None]


def emergency_requests_of(state: State, patient: bytes) -> list[EmergencyRequest]:
    """Every break-glass on the patient's set, oldest first."""
    return _request_list(state, _BY_PATIENT.items(state, patient))


def emergency_requests_by_org(state: State, org_id: str) -> list[EmergencyRequest]:
    """Every break-glass by the organisation's staff, oldest first, for its review."""
    return _request_list(state, _BY_ORG.items(state, org_id.encode()))


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


def notify(
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


def record_request(state: State, request: EmergencyRequest) -> None:
    """Keep a new request, index it by patient and by organisation, and add it to the
    open requests (dropping those expired by the time it opened)."""
    save(state, _request_key(request.request_id), request)
    _BY_PATIENT.append(state, request.patient, request.request_id)
    _BY_ORG.append(state, request.clinician_org.encode(), request.request_id)
    now = request.opened_ms
    still_open = [r.request_id for r in _requests(state, _OPEN_KEY) if now < r.expires_ms]
    save(state, _OPEN_KEY, _Ids((*still_open, request.request_id)))


def record_answer(
    state: State, request: EmergencyRequest, answer: EmergencyAnswer
) -> EmergencyRequest:
    """Keep an answer and mark its organisation as answered; returns the request."""
    save(state, _answer_key(request.request_id, answer.index), answer)
    answered = tuple(sorted((*request.answered, answer.org_id)))
    updated = replace(request, answered=answered)
    save(state, _request_key(request.request_id), updated)
    return updated
