"""Storage of the research access lists (paper 002's ALC), shared by the records
contract (an unwarrant removes the entry) and the research contract (grant, list)."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._keywrap import KeyWrap
from medchain.app._state import State, load, save


@dataclass(frozen=True, slots=True)
class ResearchEntry:
    """A de-identified copy of one record, readable by one institution."""

    record_id: bytes
    patient: bytes
    institution: bytes
    source_version: int
    cid: str
    ciphertext_hash: bytes
    wraps: tuple[KeyWrap, ...]
    granted_height: int


@dataclass(frozen=True, slots=True)
class AccessList:
    institution: bytes
    record_ids: tuple[bytes, ...]
    """Sorted ids of the records the institution may read for research."""


def _list_key(institution: bytes) -> bytes:
    return b"alc/" + institution


def _entry_key(institution: bytes, record_id: bytes) -> bytes:
    return b"alce/" + institution + record_id


def get_access_list(state: State, institution: bytes) -> AccessList:
    return load(state, _list_key(institution), AccessList) or AccessList(institution, ())


def get_entry(state: State, institution: bytes, record_id: bytes) -> ResearchEntry | None:
    return load(state, _entry_key(institution, record_id), ResearchEntry)


def add_entry(state: State, entry: ResearchEntry) -> None:
    current = get_access_list(state, entry.institution)
    ids = tuple(sorted({*current.record_ids, entry.record_id}))
    save(state, _list_key(entry.institution), AccessList(entry.institution, ids))
    save(state, _entry_key(entry.institution, entry.record_id), entry)


def remove_entry(state: State, institution: bytes, record_id: bytes) -> bool:
    """Drop the institution's research access to a record; False if it had none."""
    if get_entry(state, institution, record_id) is None:
        return False
    current = get_access_list(state, institution)
    ids = tuple(r for r in current.record_ids if r != record_id)
    if ids:
        save(state, _list_key(institution), AccessList(institution, ids))
    else:
        state.delete(_list_key(institution))
    state.delete(_entry_key(institution, record_id))
    return True


def list_entries(state: State, institution: bytes) -> list[ResearchEntry]:
    entries = []
    for record_id in get_access_list(state, institution).record_ids:
        entry = get_entry(state, institution, record_id)
        assert entry is not None, "access list names a missing entry"
        entries.append(entry)
    return entries
