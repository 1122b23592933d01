"""`records.rewrap`: the owner replaces their own key wraps on a record's versions.

After a key rotation the owner's wraps are for the retired encryption key; rewrapping
the versions they still need (the latest at least) lets the new key open them without
keeping the old secret. Only the owner's wrap changes: readers keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._errors import InvalidArgument, NotOwner, RecordErased
from medchain.app._keywrap import KeyWrap, check_wraps
from medchain.app._records import (
    AuditAction,
    VersionWrap,
    _version_key,
    append_audit,
    get_version,
    require_record,
)
from medchain.app._state import State, save
from medchain.crypto import format_address


@dataclass(frozen=True, slots=True)
class RewrapArgs:
    record_id: bytes
    wraps: tuple[VersionWrap, ...]
    """The owner's new wraps, sorted by version, unique; the latest version included."""


def rewrap(state: State, call: Call, args: RewrapArgs) -> None:
    record = require_record(state, args.record_id)
    if call.sender != record.owner:
        raise NotOwner(
            f"only the patient who owns record {record.record_id.hex()} "
            f"({format_address(record.owner)}) may replace their own key wraps"
        )
    if record.erased_height:
        raise RecordErased(
            f"record {record.record_id.hex()} was erased at height {record.erased_height}; "
            "there is nothing left to rewrap"
        )
    numbers = [w.version for w in args.wraps]
    if not numbers or numbers != sorted(set(numbers)) or numbers[0] < 1:
        raise InvalidArgument("version wraps must be unique and sorted by version")
    if numbers[-1] != record.version_count:
        raise InvalidArgument(
            f"rewrap the latest version ({record.version_count}) too: it is the one the "
            "next reads and versions use"
        )
    for vw in args.wraps:
        version = get_version(state, record.record_id, vw.version)
        assert version is not None
        wraps = tuple(
            KeyWrap(w.reader, vw.wrapped_key) if w.reader == record.owner else w
            for w in version.wraps
        )
        check_wraps(wraps, (w.reader for w in version.wraps))
        save(state, _version_key(record.record_id, vw.version), replace(version, wraps=wraps))
    append_audit(state, call, record, AuditAction.REWRAPPED, b"", record.version_count)


METHODS: Methods = {"records.rewrap": (RewrapArgs, rewrap)}
