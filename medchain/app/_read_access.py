"""Who may read sealed data from a node: a record version's wraps and ciphertext, a
research copy, a patient's encrypted search index, their vitals.

The nodes' authenticated reads ask these functions after they have checked the
signed read request; the contracts never do (a read is no transaction). Each answers
the basis the reader reads on (what the node's disclosure log records) or raises
ReadNotAllowed naming what the reader lacks; an erased record raises RecordErased.
Pure and deterministic given the state and `now_ms` (the node's clock: grants and
proxies end at their expiry whether or not a block was made since).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from medchain.app._access_lists import ResearchEntry, get_entry
from medchain.app._anon import AnonEntry, AnonScope, _entry_key
from medchain.app._devices import guardians_of, vitals_readers_of
from medchain.app._emergency_log import EmergencyRequest, emergency_requests_of
from medchain.app._errors import ContractError, RecordErased
from medchain.app._grants import grant_in_force, reader_grant
from medchain.app._proxies import ProxyScope, get_proxy
from medchain.app._purposes import PurposeOfUse
from medchain.app._records import Record, get_record
from medchain.app._recovery_log import RecoveryPolicy, RecoveryRequest
from medchain.app._registry import get_identity
from medchain.app._state import State, load
from medchain.crypto import format_address

ReadBasisName = Literal[
    "owner", "reader", "proxy", "emergency", "research", "vitals_reader", "device"
]
"""The values of medchain.node.ReadBasis (the node's disclosure log names them)."""


class ReadNotAllowed(ContractError):
    """The signer may not read this: the message names what they lack."""

    code = "read_not_authorised"


@dataclass(frozen=True, slots=True)
class ReadAccess:
    basis: ReadBasisName
    on_behalf: bytes = b""
    """The patient a proxy reads for; empty otherwise."""


def _read_proxy(state: State, patient: bytes, reader: bytes, now_ms: int) -> bool:
    found = get_proxy(state, patient, reader)
    return found is not None and ProxyScope.READ in found.scopes and found.active(now_ms)


def require_not_erased(record: Record) -> None:
    if record.erased_height:
        raise RecordErased(
            f"record {record.record_id.hex()} was erased at height {record.erased_height} "
            f"({record.erased_ms} ms) by {format_address(record.erased_by)}: nothing of it "
            "can be read any more"
        )


def record_access(
    state: State, record: Record, reader: bytes, purpose: PurposeOfUse, now_ms: int
) -> ReadAccess:
    """May `reader` read `record`'s wraps and ciphertext for `purpose` at `now_ms`: its
    owner, a `read` proxy of the owner (acting for them, for any purpose), a listed
    reader whose grant is in force for the purpose, or a clinician whose open
    emergency request covers the record."""
    require_not_erased(record)
    if reader == record.owner:
        return ReadAccess("owner")
    if _read_proxy(state, record.owner, reader, now_ms):  # acts for the patient
        return ReadAccess("proxy", record.owner)
    grant = reader_grant(state, record.record_id, record.readers, reader)
    if grant is not None and grant_in_force(grant, now_ms, purpose):
        return ReadAccess("reader")
    if _emergency_covers(state, record, reader, now_ms):
        return ReadAccess("emergency")
    who, what = format_address(reader), f"record {record.record_id.hex()}"
    if grant is None:
        lack = (
            f"{who} is not an authorised reader of {what}, nor a read proxy of its patient, nor a "
            "clinician with an open emergency request covering it; ask the patient to grant "
            "access (`medchain record grant`)"
        )
    elif not grant_in_force(grant, now_ms):
        lack = (
            f"{who}'s grant on {what} expired at {grant.expires_ms} ms; ask the patient to "
            "grant access again"
        )
    else:
        allowed = ", ".join(p.value for p in grant.purposes)
        lack = (
            f"{who}'s grant on {what} is for {allowed}, not {purpose.value}; sign the read "
            "for a purpose the grant allows, or ask the patient to change its terms"
        )
    raise ReadNotAllowed(lack)


def _emergency_covers(state: State, record: Record, reader: bytes, now_ms: int) -> bool:
    return any(
        request.clinician == reader
        and now_ms < request.expires_ms
        and any(item.record_id == record.record_id for item in request.items)
        for request in emergency_requests_of(state, record.owner)
    )


def research_copy(state: State, institution: bytes, record_id: bytes) -> ResearchEntry | None:
    """The research copy of `record_id` shared with `institution`, if any."""
    return get_entry(state, institution, record_id)


def research_access(state: State, entry: ResearchEntry, reader: bytes) -> ReadAccess:
    """May `reader` read a research copy: the institution it was shared with, or the
    patient it is of."""
    record = get_record(state, entry.record_id)
    if record is not None:
        require_not_erased(record)
    if reader == entry.institution:
        return ReadAccess("research")
    if reader == entry.patient:
        return ReadAccess("owner")
    raise ReadNotAllowed(
        f"{format_address(reader)} may not read the research copy of record "
        f"{entry.record_id.hex()}: it is shared with {format_address(entry.institution)} only"
    )


def vitals_access(state: State, patient: bytes, reader: bytes, now_ms: int) -> ReadAccess:
    """May `reader` read `patient`'s vitals: the patient, their vitals readers, or their
    current `devices` (guardians) or `read` proxies."""
    if reader == patient:
        return ReadAccess("owner")
    if reader in vitals_readers_of(state, patient):
        return ReadAccess("vitals_reader")
    if reader in guardians_of(state, patient, now_ms) or _read_proxy(
        state, patient, reader, now_ms
    ):
        return ReadAccess("proxy", patient)
    raise ReadNotAllowed(
        f"{format_address(reader)} may not read the vitals of {format_address(patient)}: "
        "it is not the patient, one of their vitals readers, guardians or read proxies; "
        "the patient adds vitals readers with `medchain devices share-vitals`"
    )


def search_access(
    state: State, owner: bytes, reader: bytes, purpose: PurposeOfUse, now_ms: int
) -> ReadAccess:
    """May `reader` look up `owner`'s encrypted keyword index: the owner, their `read`
    proxy, or a registered account as the holder of a search capability. Capabilities
    are sealed off-chain from the owner to the holder, so the node cannot tell a holder
    from anyone else: it serves a registered signer and logs the search, and only a
    holder can open the values (or produce label keys that match anything)."""
    if reader == owner:
        return ReadAccess("owner")
    if _read_proxy(state, owner, reader, now_ms):
        return ReadAccess("proxy", owner)
    if get_identity(state, reader) is not None:
        return ReadAccess("reader")
    raise ReadNotAllowed(
        f"{format_address(reader)} may not search the index of {format_address(owner)} "
        f"for {purpose.value}: it is not a registered account; register first, and ask "
        "the index's owner for a search capability (`medchain record search-grant`)"
    )


def emergency_answers_access(
    state: State, request: EmergencyRequest, reader: bytes, now_ms: int
) -> ReadAccess:
    """May `reader` read the organisations' answers to a break-glass request (the key
    material that opens the patient's emergency set): the clinician who opened it, the
    patient, or their `read` proxy."""
    if reader == request.clinician:
        return ReadAccess("emergency")
    if reader == request.patient:
        return ReadAccess("owner")
    if _read_proxy(state, request.patient, reader, now_ms):
        return ReadAccess("proxy", request.patient)
    raise ReadNotAllowed(
        f"{format_address(reader)} may not read the answers to emergency request "
        f"{request.request_id.hex()}: they are for the clinician who opened it and the patient"
    )


def anon_contribution(state: State, scope: str, index: int) -> AnonEntry | None:
    """The `index`-th contribution to an anonymous scope, if any."""
    return load(state, _entry_key(scope, index), AnonEntry)


def anon_access(scope: AnonScope, reader: bytes) -> ReadAccess:
    """May `reader` read a scope's contributions: only the institution that opened it
    (they are sealed to it alone)."""
    if reader == scope.recipient:
        return ReadAccess("research")
    raise ReadNotAllowed(
        f"{format_address(reader)} may not read the contributions to {scope.name!r}: they "
        f"are for {format_address(scope.recipient)}, the institution that opened the scope"
    )


def recovery_access(
    policy: RecoveryPolicy | None, request: RecoveryRequest | None, patient: bytes, reader: bytes
) -> ReadAccess:
    """May `reader` fetch `patient`'s sealed recovery material (the kit, the guardians'
    shares, a request's re-sealed shares): the patient (a completed recovery's new key
    signs for them), or a guardian of the policy or one who approved the request."""
    if reader == patient:
        return ReadAccess("owner")
    guardians = () if policy is None else policy.guardians
    approvers = () if request is None else tuple(a.guardian for a in request.approvals)
    if reader in guardians or reader in approvers:
        return ReadAccess("proxy", patient)
    raise ReadNotAllowed(
        f"{format_address(reader)} may not fetch the recovery material of "
        f"{format_address(patient)}: it is for the patient and their recovery guardians"
    )
