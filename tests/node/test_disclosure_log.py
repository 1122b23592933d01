"""A node's disclosure log: it lists exactly the reads appended, in order; its heads
chain; reopened, it goes on from its last entry; and a changed or deleted entry no
longer gives the head the node committed."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from medchain.node import DisclosureLogFailed, SqliteDisclosureLog, check_log_file
from medchain.types import (
    HEAD_ZERO,
    Disclosure,
    DisclosureKind,
    LoggedDisclosure,
    MedchainError,
    ReadBasis,
    decode,
    encode,
    entry_hash,
    first_disagreement,
    heads_of,
    next_head,
)

NODE = bytes([7]) * 20
PATIENT = bytes([1]) * 20
OTHER = bytes([2]) * 20
DOCTOR = bytes([3]) * 20


def read(n: int, patient: bytes = PATIENT, record: bytes = b"r1") -> Disclosure:
    return Disclosure(
        time_ms=1_000 + n,
        reader=DOCTOR,
        patient=patient,
        kind=DisclosureKind.BODY,
        purpose="TREAT",
        basis=ReadBasis.READER,
        record_id=record,
        version=n,
    )


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "disclosures.sqlite"


def written(path: Path, reads: list[Disclosure]) -> tuple[int, bytes]:
    """Append `reads` to a fresh log at `path`, close it; its durable (seq, head)."""
    log = SqliteDisclosureLog(path, NODE)
    for item in reads:
        log.append(item)
    assert log.flush(30)
    durable = log.durable
    log.close()
    return durable


def test_lists_exactly_the_reads_appended_in_order(path: Path) -> None:
    log = SqliteDisclosureLog(path, NODE)
    mine = [read(1), read(2, record=b"r2"), read(3)]
    log.append(mine[0])
    log.append(read(9, patient=OTHER))
    log.append(mine[1])
    log.append(mine[2])
    queued = [e.entry.disclosure for e in log.entries_of(PATIENT)]
    assert log.flush(30)
    entries = log.entries_of(PATIENT)
    assert [e.entry.disclosure for e in entries] == mine == queued
    assert [e.seq for e in entries] == [1, 3, 4]
    assert all(e.entry.node == NODE and len(e.entry.salt) == 16 for e in entries)
    assert [e.entry.disclosure for e in log.entries_of(PATIENT, b"r2")] == [mine[1]]
    assert [e.entry.disclosure for e in log.entries_of(OTHER)] == [read(9, patient=OTHER)]
    log.close()


def test_heads_chain_over_the_salted_entry_hashes(path: Path) -> None:
    log = SqliteDisclosureLog(path, NODE)
    for n in range(5):
        log.append(read(n))
    assert log.flush(30)
    stored = list(log.written())
    hashes = [entry_hash(e.entry) for e in stored]
    assert [e.hash for e in stored] == hashes == log.hashes(1, 5)
    head = HEAD_ZERO
    for e in stored:
        head = next_head(head, e.hash)
        assert e.head == head
    assert heads_of(hashes) == [e.head for e in stored]
    assert log.durable == (5, stored[-1].head)
    assert log.hashes(2, 3) == hashes[1:3]
    assert len({e.entry.salt for e in stored}) == 5  # salted: equal reads hash apart
    log.close()


def test_reopening_continues_the_chain(path: Path) -> None:
    first = written(path, [read(1), read(2)])
    log = SqliteDisclosureLog(path, NODE)
    assert log.durable == first and log.length == 2
    log.append(read(3))
    assert log.flush(30)
    entries = list(log.written())
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[2].head == next_head(first[1], entries[2].hash)
    assert log.disagreement([(2, first[1]), log.durable]) == 0
    log.close()


def test_a_changed_entry_is_detected_against_the_committed_head(path: Path) -> None:
    committed = written(path, [read(1), read(2), read(3)])
    with sqlite3.connect(path) as db:
        (raw,) = db.execute("SELECT entry FROM entries WHERE seq = 2").fetchone()
        changed = encode_changed(bytes(raw))
        db.execute("UPDATE entries SET entry = ? WHERE seq = 2", (changed,))
    log = SqliteDisclosureLog(path, NODE)
    assert log.disagreement([(1, heads_before(path, 1)), committed]) == 3
    log.close()


def test_a_deleted_entry_is_detected_against_the_committed_head(path: Path) -> None:
    committed = written(path, [read(1), read(2), read(3)])
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE seq = 2")
    log = SqliteDisclosureLog(path, NODE)
    assert log.disagreement([committed]) == 3
    log.close()


def test_a_closed_log_refuses_reads(path: Path) -> None:
    log = SqliteDisclosureLog(path, NODE)
    log.close()
    with pytest.raises(DisclosureLogFailed, match="another node"):
        log.append(read(1))


def test_first_disagreement_names_the_first_commit_the_hashes_do_not_give() -> None:
    hashes = [bytes([n]) * 32 for n in range(4)]
    heads = heads_of(hashes)
    good = [(2, heads[1]), (4, heads[3])]
    assert first_disagreement(hashes, good) == 0
    assert first_disagreement(hashes[:3], good) == 4  # the log stops short
    assert first_disagreement(hashes, [(2, heads[1]), (3, heads[1])]) == 3


def encode_changed(raw: bytes) -> bytes:
    """The entry with its purpose changed (same salt and node)."""
    entry = decode(LoggedDisclosure, raw)
    return encode(replace(entry, disclosure=replace(entry.disclosure, purpose="HRESCH")))


def heads_before(path: Path, seq: int) -> bytes:
    with sqlite3.connect(path) as db:
        (head,) = db.execute("SELECT head FROM entries WHERE seq = ?", (seq,)).fetchone()
    return bytes(head)


def test_a_home_s_log_file_is_checked_read_only(path: Path) -> None:
    committed = written(path, [read(1), read(2)])
    assert check_log_file(path, [committed]) == (2, 0)
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM entries WHERE seq = 1")
    assert check_log_file(path, [committed]) == (1, 2)
    with pytest.raises(MedchainError, match="no disclosure log"):
        check_log_file(path.with_name("missing.sqlite"), [])
