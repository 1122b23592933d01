"""`records.set_terms`: the owner (or their `grant` proxy) changes what a current reader
of a record may read it for, and until when — renewing an expiry before it strikes,
shortening one, or narrowing the purposes — without re-wrapping anything."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._consents import check_expiry, normalise_purposes
from medchain.app._context import Call, Methods
from medchain.app._errors import NotAuthorised
from medchain.app._grants import ReaderGrant, get_reader_grant, put_reader_grant
from medchain.app._purposes import PurposeOfUse
from medchain.app._records import AuditAction, append_audit, owner_or_grant_proxy, require_record
from medchain.app._state import State
from medchain.crypto import format_address


@dataclass(frozen=True, slots=True)
class SetTermsArgs:
    record_id: bytes
    reader: bytes
    purposes: tuple[PurposeOfUse, ...]
    """Empty means `DEFAULT_GRANT_PURPOSES`."""
    expires_ms: int
    """Block time the grant ends at (0 = never)."""


def set_terms(state: State, call: Call, args: SetTermsArgs) -> None:
    record = require_record(state, args.record_id)
    on_behalf = owner_or_grant_proxy(state, record, call, "change a reader's terms")
    if args.reader not in record.readers:
        raise NotAuthorised(
            f"{format_address(args.reader)} is not a reader of record {record.record_id.hex()}; "
            "grant it first (`medchain record grant`)"
        )
    check_expiry(args.expires_ms, call.block.time_ms)
    purposes = normalise_purposes(args.purposes)
    before = get_reader_grant(state, record.record_id, args.reader)
    granted = call.block.height if before is None else before.granted_height
    grant = ReaderGrant(record.record_id, args.reader, purposes, args.expires_ms, granted)
    put_reader_grant(state, grant)
    append_audit(
        state,
        call,
        record,
        AuditAction.TERMS_CHANGED,
        args.reader,
        record.version_count,
        on_behalf,
    )


METHODS: Methods = {
    "records.set_terms": (SetTermsArgs, set_terms),
}
