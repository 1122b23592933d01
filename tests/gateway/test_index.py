"""The gateway's SQLite index: sequences, pending and committed readings persist."""

from __future__ import annotations

import random
import sqlite3
import threading
from pathlib import Path

from medchain.crypto import AccountKeys, address_from_public_key
from medchain.gateway import Batch, BatchEntry, SignedReading, sign_reading, verify_proof
from medchain.gateway._index import CommittedReading, CommittedRow, ReadingIndex

PATIENT = b"\x07" * 20


def _commit(index: ReadingIndex, batch_id: bytes, readings: list[SignedReading]) -> Batch:
    """Commit `readings` as one batch, the way the gateway's Committer.record does."""
    batch = Batch(BatchEntry("patient", r) for r in readings)
    rows: list[CommittedRow] = [
        (
            rid,
            batch_id,
            leaf,
            address_from_public_key(e.reading.reading.device),
            PATIENT,
            e.reading.reading.timestamp_ms,
            f"bafk{leaf}",
        )
        for leaf, (rid, e) in enumerate(zip(batch.reading_ids, batch.entries, strict=True))
    ]
    index.commit_batch(batch_id, batch.root, batch.reading_ids, rows)
    return batch


def test_index_round_trip(tmp_path: Path) -> None:
    keys = AccountKeys.generate()
    path = tmp_path / "index.sqlite"
    index = ReadingIndex(path)
    readings = [sign_reading(keys, seq, 1000 + seq, b"{}") for seq in (3, 9, 11)]
    for r in readings:
        index.accept(r, PATIENT)
    assert index.sequences() == {keys.public_key: 11}
    index.close()

    index = ReadingIndex(path)
    assert [p.reading for p in index.pending()] == readings
    batch = _commit(index, b"\x03" * 16, readings[:2])
    index.close()

    index = ReadingIndex(path)  # the batch is read back from disk, not from the cache
    for r in readings[:2]:
        rid = r.reading_id
        leaf = batch.reading_ids.index(rid)
        found = index.committed(rid)
        assert found == CommittedReading(
            rid,
            b"\x03" * 16,
            batch.prove(rid),
            keys.address,
            PATIENT,
            r.reading.timestamp_ms,
            f"bafk{leaf}",
        )
        assert verify_proof(found.proof, batch.root)
        assert index.is_committed(rid) and not index.is_pending(rid)
    assert index.is_pending(readings[2].reading_id)
    assert index.committed(readings[2].reading_id) is None
    assert not index.is_committed(readings[2].reading_id)
    assert index.committed_count() == 2
    assert index.batch_readings() == {b"\x03" * 16: list(batch.reading_ids)}
    index.close()


def test_proofs_of_many_readings_over_batches_verify(tmp_path: Path) -> None:
    """Proofs are computed per batch and the last batches asked are cached: whatever
    order readings are asked in, each proof is the batch's own and verifies."""
    keys = [AccountKeys.generate() for _ in range(3)]
    readings = [sign_reading(keys[i % 3], i, 5000 + i, b"{}") for i in range(300)]
    index = ReadingIndex(tmp_path / "index.sqlite", proof_cache_batches=2)
    index.accept_many([(r, PATIENT) for r in readings])
    sizes = [1, 2, 7, 64, 100, 126]  # odd sizes, powers of two, a single reading
    batches: dict[bytes, Batch] = {}
    start = 0
    for n, size in enumerate(sizes):
        batch_id = bytes([n]) * 16
        batches[batch_id] = _commit(index, batch_id, readings[start : start + size])
        start += size
    assert index.pending() == [] and index.committed_count() == 300
    assert index.batch_readings() == {b: list(x.reading_ids) for b, x in batches.items()}
    asked = [r.reading_id for r in readings] * 2
    random.Random(7).shuffle(asked)
    for rid in asked:
        found = index.committed(rid)
        assert found is not None
        batch = batches[found.batch_id]
        assert rid in batch
        assert found.proof == batch.prove(rid)
        assert verify_proof(found.proof, batch.root)
        other = next(b for b in batches.values() if rid not in b)
        assert not verify_proof(found.proof, other.root)


def test_committed_is_safe_while_batches_are_written(tmp_path: Path) -> None:
    keys = AccountKeys.generate()
    readings = [sign_reading(keys, i, 1 + i, b"{}") for i in range(400)]
    index = ReadingIndex(tmp_path / "index.sqlite", proof_cache_batches=1)
    batches = [readings[i : i + 40] for i in range(0, 400, 40)]
    roots: dict[bytes, bytes] = {}
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        rng = random.Random(3)
        try:
            while not done.is_set():
                found = index.committed(rng.choice(readings).reading_id)
                if found is not None:
                    assert verify_proof(found.proof, roots[found.batch_id])
        except BaseException as exc:  # reported below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for t in readers:
        t.start()
    for n, group in enumerate(batches):
        batch = Batch(BatchEntry("patient", r) for r in group)
        roots[bytes([n]) * 16] = batch.root
        _commit(index, bytes([n]) * 16, group)
    done.set()
    for t in readers:
        t.join()
    assert errors == []
    assert index.committed_count() == 400


def test_an_index_of_the_earlier_format_opens(tmp_path: Path) -> None:
    """An index.sqlite written with a path per reading still opens; its old committed
    table is ignored."""
    path = tmp_path / "index.sqlite"
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE committed (id BLOB PRIMARY KEY, batch_id BLOB NOT NULL, root BLOB NOT "
        "NULL, idx INTEGER NOT NULL, tree_size INTEGER NOT NULL, path BLOB NOT NULL, device "
        "BLOB NOT NULL, patient BLOB NOT NULL, time_ms INTEGER NOT NULL, cid TEXT NOT NULL)"
    )
    db.execute(
        "INSERT INTO committed VALUES (?, ?, ?, 0, 1, ?, ?, ?, 1, 'bafk')",
        (b"\x01" * 32, b"\x02" * 16, b"\x03" * 32, b"", b"\x04" * 20, PATIENT),
    )
    db.commit()
    db.close()
    index = ReadingIndex(path)
    assert index.committed(b"\x01" * 32) is None
    assert index.committed_count() == 0
    keys = AccountKeys.generate()
    reading = sign_reading(keys, 1, 1, b"{}")
    index.accept(reading, PATIENT)
    _commit(index, b"\x05" * 16, [reading])
    found = index.committed(reading.reading_id)
    assert found is not None and found.proof.tree_size == 1
    index.close()


def test_accept_many_is_one_group_with_each_devices_last_sequence(tmp_path: Path) -> None:
    first, second = AccountKeys.generate(), AccountKeys.generate()
    patient = PATIENT
    group = [
        sign_reading(first, 4, 1, b"{}"),
        sign_reading(second, 1, 2, b"{}"),
        sign_reading(first, 5, 3, b"{}"),
    ]
    index = ReadingIndex(tmp_path / "index.sqlite")
    index.accept_many([(r, patient) for r in group])
    assert index.sequences() == {first.public_key: 5, second.public_key: 1}
    assert [p.reading for p in index.pending()] == group  # in arrival order
    index.accept_many([])
    assert len(index.pending()) == 3


def test_intake_is_not_held_up_by_a_batch_being_recorded(tmp_path: Path) -> None:
    """Committed readings live in their own file: while a batch is being recorded (its
    writer busy), readings are still accepted."""
    index = ReadingIndex(tmp_path / "index.sqlite")
    assert (tmp_path / "index-committed.sqlite").exists()
    keys = AccountKeys.generate()
    accepted = threading.Event()

    def accept() -> None:
        index.accept_many([(sign_reading(keys, 1, 1, b"{}"), PATIENT)])
        accepted.set()

    with index._committed_lock:  # a batch is being recorded
        worker = threading.Thread(target=accept)
        worker.start()
        assert accepted.wait(5)
    worker.join()
    assert len(index.pending()) == 1
    index.close()


def test_readings_of_a_batch_recorded_before_a_stop_are_not_pending_again(
    tmp_path: Path,
) -> None:
    """Stopped after a batch was recorded but before its readings left pending, the
    gateway finds them committed when it starts, not pending (they would be batched twice)."""
    path = tmp_path / "index.sqlite"
    index = ReadingIndex(path)
    keys = AccountKeys.generate()
    readings = [sign_reading(keys, seq, seq, b"{}") for seq in (1, 2, 3)]
    index.accept_many([(r, PATIENT) for r in readings])
    _commit(index, b"\x09" * 16, readings[:2])
    index.accept_many([(r, PATIENT) for r in readings[:2]])  # as if never dropped
    index.close()
    reopened = ReadingIndex(path)
    assert [p.reading for p in reopened.pending()] == [readings[2]]
    assert reopened.is_committed(readings[0].reading_id)
    assert not reopened.is_pending(readings[0].reading_id)  # and dropped for good
    reopened.close()


def test_an_index_of_the_previous_format_has_its_batches_moved(tmp_path: Path) -> None:
    """An index.sqlite that kept batches and committed readings itself: they move to
    index-committed.sqlite when it opens, and its readings' proofs are served."""
    path = tmp_path / "index.sqlite"
    keys = AccountKeys.generate()
    reading = sign_reading(keys, 1, 1, b"{}")
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE batches (id BLOB PRIMARY KEY, root BLOB NOT NULL, tree_size INTEGER "
        "NOT NULL, leaves BLOB NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE committed_readings (id BLOB PRIMARY KEY, batch_id BLOB NOT NULL, idx "
        "INTEGER NOT NULL, device BLOB NOT NULL, patient BLOB NOT NULL, time_ms INTEGER NOT "
        "NULL, cid TEXT NOT NULL) WITHOUT ROWID;"
    )
    batch = Batch([BatchEntry("patient", reading)])
    db.execute(
        "INSERT INTO batches VALUES (?, ?, 1, ?)",
        (b"\x05" * 16, batch.root, reading.reading_id),
    )
    db.execute(
        "INSERT INTO committed_readings VALUES (?, ?, 0, ?, ?, 1, 'bafk')",
        (reading.reading_id, b"\x05" * 16, b"\x04" * 20, PATIENT),
    )
    db.commit()
    db.close()
    index = ReadingIndex(path)
    found = index.committed(reading.reading_id)
    assert found is not None and verify_proof(found.proof, batch.root)
    index.close()
    tables = {name for (name,) in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "batches" not in tables and "committed_readings" not in tables
    assert ReadingIndex(path).committed(reading.reading_id) is not None  # opens again
