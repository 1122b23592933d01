"""Erasure: a patient (or their `grant` proxy) erases a record.

The chain cannot forget its blocks, but it can stop holding what opens a record: the
erasure empties every version's key wraps, deletes the readers' grants, the record's
emergency wrap and its research copies' entries, and marks the record erased (when and
by whom). The `record.erased` event names every ciphertext to delete (the versions'
and the research copies'); each node deletes them when it commits the block and
refuses to store or fetch them again. Every later method on the record refuses with
`RecordErased` (see `_records.require_record`).

A chain-wide counted list of erasures lets a node that joined from a snapshot, after
the erasure's block, learn which ciphertexts it must never take in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from medchain.app import _access_lists as alc
from medchain.app._context import Call, Methods
from medchain.app._emergency_set import drop_emergency_wrap
from medchain.app._errors import InvalidArgument
from medchain.app._grants import delete_reader_grant
from medchain.app._indexes import CountedList
from medchain.app._records import (
    AuditAction,
    Record,
    RecordVersion,
    append_audit,
    audit_trail,
    owner_or_grant_proxy,
    require_record,
    save_version,
    versions,
)
from medchain.app._state import State, load, save
from medchain.types import Receipt

MAX_ERASE_REASON_CHARS = 280
ERASED_EVENT = f"record.{AuditAction.ERASED.value}"
"""The event `records.erase` emits, naming the ciphertexts to delete (`cids`)."""


@dataclass(frozen=True, slots=True)
class EraseArgs:
    record_id: bytes
    reason: str = ""
    """Why, in the patient's words (optional; public, like the transaction)."""


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed: the ciphertexts every node deletes and refuses."""

    record_id: bytes
    patient: bytes
    cids: tuple[str, ...]
    """Sorted CIDs of the record's versions and research copies."""
    reason: str
    height: int


def _erasure_key(record_id: bytes) -> bytes:
    return b"erase/" + record_id


_ERASED = CountedList(b"erased/")
"""Every erased record's id, chain-wide (owner b""), in the order they committed."""
_COPIES = CountedList(b"recrc/")
"""Per record: the CIDs of every research copy ever granted."""


def get_erasure(state: State, record_id: bytes) -> Erasure | None:
    return load(state, _erasure_key(record_id), Erasure)


def erasure_count(state: State) -> int:
    """How many records the chain erased so far."""
    return _ERASED.count(state, b"")


def erasure_at(state: State, index: int) -> Erasure:
    """The `index`-th erasure (from 0), in the order they committed."""
    erasure = get_erasure(state, _ERASED.get(state, b"", index))
    assert erasure is not None, "erasure list names a missing erasure"
    return erasure


def erased_cids(receipts: Sequence[Receipt]) -> list[str]:
    """The ciphertexts the erasures among a block's receipts name, in order: what a
    node deletes when it commits the block."""
    cids: list[str] = []
    for receipt in receipts:
        for event in receipt.events if receipt.ok else ():
            if event.kind == ERASED_EVENT:
                shown = {a.key: a.value for a in event.attributes}
                cids.extend(shown.get("cids", "").split())
    return cids


def note_research_copy(state: State, record_id: bytes, cid: str) -> None:
    """Remember a research copy's ciphertext for the record's erasure: revoking the
    copy removes the access, not the bytes, which a later erasure must delete too."""
    _COPIES.append(state, record_id, cid.encode())


def research_copy_cids(state: State, record_id: bytes) -> list[str]:
    """Every research copy of the record ever granted, revoked ones too."""
    return [cid.decode() for cid in _COPIES.items(state, record_id)]


def _append(state: State, erasure: Erasure) -> None:
    save(state, _erasure_key(erasure.record_id), erasure)
    _ERASED.append(state, b"", erasure.record_id)


def _subjects(state: State, record: Record, action: AuditAction) -> list[bytes]:
    """Everyone the audit trail names for `action`, sorted, each once."""
    return sorted({e.subject for e in audit_trail(state, record) if e.action is action})


def _drop_research(state: State, record: Record) -> list[str]:
    """Remove the research copies of the record still granted; returns the CIDs of
    every copy ever granted."""
    cids = research_copy_cids(state, record.record_id)
    for institution in _subjects(state, record, AuditAction.RESEARCH_GRANTED):
        entry = alc.get_entry(state, institution, record.record_id)
        if entry is not None:
            cids.append(entry.cid)
            alc.remove_entry(state, institution, record.record_id)
    return cids


def _empty_wraps(state: State, found: list[RecordVersion]) -> list[str]:
    for version in found:
        save_version(state, replace(version, wraps=()))
    return [v.cid for v in found]


def erase(state: State, call: Call, args: EraseArgs) -> None:
    """The owner or their `grant` proxy erases the record (see the module's note)."""
    record = require_record(state, args.record_id)  # RecordErased the second time
    on_behalf = owner_or_grant_proxy(state, record, call, "erase a record")
    reason = args.reason.strip()
    if len(reason) > MAX_ERASE_REASON_CHARS:
        raise InvalidArgument(f"an erasure's reason is at most {MAX_ERASE_REASON_CHARS} characters")
    cids = _empty_wraps(state, versions(state, record))
    cids += _drop_research(state, record)
    for reader in sorted({*record.readers, *_subjects(state, record, AuditAction.GRANTED)}):
        delete_reader_grant(state, record.record_id, reader)
    drop_emergency_wrap(state, record.owner, record.record_id)
    unique = tuple(sorted(set(cids)))
    erasure = Erasure(record.record_id, record.owner, unique, reason, call.block.height)
    _append(state, erasure)
    erased = replace(
        record,
        readers=(),
        erased_height=call.block.height,
        erased_ms=call.block.time_ms,
        erased_by=call.sender,
    )
    append_audit(
        state,
        call,
        erased,
        AuditAction.ERASED,
        version=record.version_count,
        on_behalf=on_behalf,
        cids=" ".join(erasure.cids),
        reason=reason,
    )


METHODS: Methods = {"records.erase": (EraseArgs, erase)}
