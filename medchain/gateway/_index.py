"""The gateway's own SQLite index (index.sqlite in its home).

It keeps what must survive a restart: the last accepted sequence number of each device
(the replay guard), every reading accepted but not yet committed (so an acknowledged
reading is never lost), and, per committed reading, where it went on chain (batch id,
root, leaf index and Merkle path, patient, bundle CID), so a proof can be served later
without rebuilding the batch.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medchain.gateway._batch import ReadingProof
from medchain.gateway._readings import (
    SignedReading,
    decode_signed_reading,
    encode_signed_reading,
)
from medchain.types import HASH_SIZE

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (device BLOB PRIMARY KEY, seq BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    id BLOB PRIMARY KEY, patient BLOB NOT NULL, reading BLOB NOT NULL, accepted INTEGER
);
CREATE TABLE IF NOT EXISTS committed (
    id BLOB PRIMARY KEY, batch_id BLOB NOT NULL, root BLOB NOT NULL, idx INTEGER NOT NULL,
    tree_size INTEGER NOT NULL, path BLOB NOT NULL, device BLOB NOT NULL,
    patient BLOB NOT NULL, time_ms INTEGER NOT NULL, cid TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class PendingReading:
    reading: SignedReading
    patient: bytes


@dataclass(frozen=True)
class CommittedReading:
    """Where a reading went on chain."""

    reading_id: bytes
    batch_id: bytes
    proof: ReadingProof
    device: bytes
    patient: bytes
    time_ms: int
    cid: str


class ReadingIndex:
    """Thread-safe (one connection behind a lock): the HTTP server reads it while the
    batcher writes it. `path` may be ":memory:" for tests."""

    def __init__(self, path: Path | str) -> None:
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        if str(path) != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._order = 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- replay guard -------------------------------------------------------------------

    def sequences(self) -> dict[bytes, int]:
        with self._lock:
            rows = self._db.execute("SELECT device, seq FROM sequences").fetchall()
        return {bytes(d): int.from_bytes(s, "big") for d, s in rows}

    # -- pending ------------------------------------------------------------------------

    def accept(self, reading: SignedReading, patient: bytes) -> None:
        """Record one accepted reading (see `accept_many`)."""
        self.accept_many([(reading, patient)])

    def accept_many(self, readings: Sequence[tuple[SignedReading, bytes]]) -> None:
        """Record accepted readings (with their patients) and their devices' new last
        sequence numbers in one transaction: the devices are acknowledged only after this
        returns, and one commit for a group is what lets a gateway take thousands a second."""
        if not readings:
            return
        with self._lock, self._db:
            self._db.execute("BEGIN")
            pending = []
            last: dict[bytes, int] = {}
            for reading, patient in readings:
                self._order += 1
                pending.append(
                    (reading.reading_id, patient, encode_signed_reading(reading), self._order)
                )
                r = reading.reading
                last[r.device] = max(r.sequence, last.get(r.device, -1))
            self._db.executemany("INSERT OR IGNORE INTO pending VALUES (?, ?, ?, ?)", pending)
            self._db.executemany(
                "INSERT INTO sequences VALUES (?, ?) ON CONFLICT(device) DO UPDATE SET seq = "
                "excluded.seq",
                [(device, seq.to_bytes(8, "big")) for device, seq in last.items()],
            )

    def pending(self) -> list[PendingReading]:
        with self._lock:
            rows = self._db.execute(
                "SELECT reading, patient FROM pending ORDER BY accepted"
            ).fetchall()
        return [PendingReading(decode_signed_reading(bytes(r)), bytes(p)) for r, p in rows]

    def is_pending(self, reading_id: bytes) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM pending WHERE id = ?", (reading_id,)).fetchone()
        return row is not None

    # -- committed ----------------------------------------------------------------------

    def commit(self, entries: list[CommittedReading]) -> None:
        """Move readings from pending to committed in one transaction."""
        rows = [
            (
                e.reading_id,
                e.batch_id,
                e.proof.root,
                e.proof.index,
                e.proof.tree_size,
                b"".join(e.proof.path),
                e.device,
                e.patient,
                e.time_ms,
                e.cid,
            )
            for e in entries
        ]
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO committed VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
            self._db.executemany(
                "DELETE FROM pending WHERE id = ?", [(e.reading_id,) for e in entries]
            )

    def batch_readings(self) -> dict[bytes, list[bytes]]:
        """Batch id -> the ids of its readings, in leaf order (for audits and benchmarks)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT batch_id, id FROM committed ORDER BY batch_id, idx"
            ).fetchall()
        result: dict[bytes, list[bytes]] = {}
        for batch, rid in rows:
            result.setdefault(bytes(batch), []).append(bytes(rid))
        return result

    def committed(self, reading_id: bytes) -> CommittedReading | None:
        with self._lock:
            row = self._db.execute(
                "SELECT batch_id, root, idx, tree_size, path, device, patient, time_ms, cid "
                "FROM committed WHERE id = ?",
                (reading_id,),
            ).fetchone()
        if row is None:
            return None
        batch_id, root, index, size, path, device, patient, time_ms, cid = row
        raw = bytes(path)
        hashes = tuple(raw[i : i + HASH_SIZE] for i in range(0, len(raw), HASH_SIZE))
        proof = ReadingProof(reading_id, bytes(root), int(index), int(size), hashes)
        return CommittedReading(
            reading_id, bytes(batch_id), proof, bytes(device), bytes(patient), int(time_ms), cid
        )

    def committed_count(self) -> int:
        with self._lock:
            (count,) = self._db.execute("SELECT COUNT(*) FROM committed").fetchone()
        return int(count)
