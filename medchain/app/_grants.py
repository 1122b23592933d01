"""The terms of a reader's grant on a record: the purposes it allows and its expiry.

A record's reader list says who holds a key wrap; the grant says what for and until
when. An expired grant behaves as a revoke: the nodes refuse the reader's
authenticated reads from its expiry on, and the next version is not wrapped for it
(forward-only, like a revoke: what it already opened stays opened). Kept apart from
the record so that a grant's terms change without rewriting the record.
"""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._purposes import DEFAULT_GRANT_PURPOSES, PurposeOfUse
from medchain.app._state import State, load, save


@dataclass(frozen=True, slots=True)
class ReaderGrant:
    record_id: bytes
    reader: bytes
    purposes: tuple[PurposeOfUse, ...]
    """Sorted, at least one."""
    expires_ms: int
    """Block time the grant ends at (0 = never)."""
    granted_height: int
    consent_id: int = 0
    """The standing consent the grant follows from (0 = granted for this record)."""


def _grant_key(record_id: bytes, reader: bytes) -> bytes:
    return b"recg/" + record_id + reader


def get_reader_grant(state: State, record_id: bytes, reader: bytes) -> ReaderGrant | None:
    """The stored terms of `reader`'s grant on the record, None when none is stored."""
    return load(state, _grant_key(record_id, reader), ReaderGrant)


def put_reader_grant(state: State, grant: ReaderGrant) -> None:
    save(state, _grant_key(grant.record_id, grant.reader), grant)


def delete_reader_grant(state: State, record_id: bytes, reader: bytes) -> None:
    state.delete(_grant_key(record_id, reader))


def reader_grant(
    state: State, record_id: bytes, readers: tuple[bytes, ...], reader: bytes
) -> ReaderGrant | None:
    """The grant of a listed reader: its stored terms, or the default terms (treatment,
    no expiry) for a reader listed without any; None for an account not listed."""
    if reader not in readers:
        return None
    return get_reader_grant(state, record_id, reader) or ReaderGrant(
        record_id, reader, DEFAULT_GRANT_PURPOSES, 0, 0
    )


def grant_in_force(grant: ReaderGrant, now_ms: int, purpose: PurposeOfUse | None = None) -> bool:
    """Whether the grant allows a read at `now_ms` (for `purpose`, when one is named)."""
    if grant.expires_ms and now_ms >= grant.expires_ms:
        return False
    return purpose is None or purpose in grant.purposes
