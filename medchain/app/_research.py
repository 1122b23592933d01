"""Research contract (paper 002's ALC): a patient lets an institution read a
de-identified copy of a record. The patient's client makes the copy, encrypts it
for the institution and the patient, and registers it here; the institution's
`get_data` lists what it may read. Revoking — here or by unwarranting the
institution on the record — takes the copy off the list."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app import _access_lists as alc
from medchain.app._context import Call, Methods
from medchain.app._erasure import note_research_copy
from medchain.app._errors import AlreadyAuthorised, InvalidArgument, NotAuthorised
from medchain.app._keywrap import KeyWrap, check_wraps
from medchain.app._orgs import OrgKind, require_org_account
from medchain.app._records import (
    AuditAction,
    append_audit,
    check_blob,
    owner_or_grant_proxy,
    require_record,
    revoke_research,
)
from medchain.app._state import State
from medchain.crypto import format_address


@dataclass(frozen=True, slots=True)
class ResearchGrantArgs:
    record_id: bytes
    institution: bytes
    cid: str
    ciphertext_hash: bytes
    wraps: tuple[KeyWrap, ...]
    """The de-identified copy's content key, wrapped for the institution and the owner."""


@dataclass(frozen=True, slots=True)
class ResearchRevokeArgs:
    record_id: bytes
    institution: bytes


def grant(state: State, call: Call, args: ResearchGrantArgs) -> None:
    record = require_record(state, args.record_id)
    on_behalf = owner_or_grant_proxy(state, record, call, "grant research access")
    require_org_account(state, args.institution, (OrgKind.RESEARCH,))
    if alc.get_entry(state, args.institution, record.record_id) is not None:
        raise AlreadyAuthorised(
            f"{format_address(args.institution)} already has this record for research; "
            "revoke it first to replace the copy"
        )
    check_blob(args.cid, args.ciphertext_hash)
    if args.institution == record.owner:
        raise InvalidArgument("an institution cannot own the record it researches")
    check_wraps(args.wraps, (record.owner, args.institution))
    alc.add_entry(
        state,
        alc.ResearchEntry(
            record_id=record.record_id,
            patient=record.owner,
            institution=args.institution,
            source_version=record.version_count,
            cid=args.cid,
            ciphertext_hash=args.ciphertext_hash,
            wraps=args.wraps,
            granted_height=call.block.height,
        ),
    )
    note_research_copy(state, record.record_id, args.cid)
    append_audit(
        state,
        call,
        record,
        AuditAction.RESEARCH_GRANTED,
        args.institution,
        record.version_count,
        on_behalf,
    )


def revoke(state: State, call: Call, args: ResearchRevokeArgs) -> None:
    record = require_record(state, args.record_id)
    on_behalf = owner_or_grant_proxy(state, record, call, "revoke research access")
    if alc.get_entry(state, args.institution, record.record_id) is None:
        raise NotAuthorised(
            f"{format_address(args.institution)} has no research access to this record"
        )
    revoke_research(state, call, record, args.institution, on_behalf)


def get_data(state: State, institution: bytes) -> list[alc.ResearchEntry]:
    """What the institution may read: its access list, in record-id order."""
    return alc.list_entries(state, institution)


METHODS: Methods = {
    "research.grant": (ResearchGrantArgs, grant),
    "research.revoke": (ResearchRevokeArgs, revoke),
}
