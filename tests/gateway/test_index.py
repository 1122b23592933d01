"""The gateway's SQLite index: sequences, pending and committed readings persist."""

from __future__ import annotations

from pathlib import Path

from medchain.crypto import AccountKeys
from medchain.gateway import ReadingProof, sign_reading
from medchain.gateway._index import CommittedReading, ReadingIndex


def test_index_round_trip(tmp_path: Path) -> None:
    keys = AccountKeys.generate()
    patient = b"\x07" * 20
    path = tmp_path / "index.sqlite"
    index = ReadingIndex(path)
    readings = [sign_reading(keys, seq, 1000 + seq, b"{}") for seq in (3, 9)]
    for r in readings:
        index.accept(r, patient)
    assert index.sequences() == {keys.public_key: 9}
    index.close()

    index = ReadingIndex(path)
    assert [p.reading for p in index.pending()] == readings
    rid = readings[0].reading_id
    proof = ReadingProof(rid, b"\x01" * 32, 0, 2, (b"\x02" * 32,))
    entry = CommittedReading(rid, b"\x03" * 16, proof, keys.address, patient, 1003, "bafk")
    index.commit([entry])
    assert index.committed(rid) == entry
    assert not index.is_pending(rid) and index.is_pending(readings[1].reading_id)
    assert index.committed(readings[1].reading_id) is None
    assert index.committed_count() == 1
    index.close()


def test_accept_many_is_one_group_with_each_devices_last_sequence(tmp_path: Path) -> None:
    first, second = AccountKeys.generate(), AccountKeys.generate()
    patient = b"\x07" * 20
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
