"""The gateway's own SQLite index (index.sqlite in its home).

It keeps what must survive a restart: the last accepted sequence number of each device
(the replay guard), every reading accepted but not yet committed (so an acknowledged
reading is never lost), and where each committed reading went on chain, so a proof can
be served later without the batch.

Proofs are stored per batch, not per reading: a batch is one row (batch id, root, tree
size, its reading ids in leaf order as one blob) and a reading one small row (batch id,
leaf index, device, patient, time, bundle CID). A reading's audit path is computed when
asked, for all the readings of its batch in one pass, and the paths of the last few
batches asked are kept in memory (`proof_cache_batches`).

Two SQLite files, so that each has its own writer: `index.sqlite` (replay guard and
pending readings, written by intake at every group of readings) and
`index-committed.sqlite` beside it (batches and committed readings, written once per
batch). Recording a large batch's readings takes a while (its rows go to random places
of a growing table); in one file, intake waited for it, and devices for their answers.
A batch is recorded as committed first, then its readings leave pending: a gateway
stopped in between finds them committed when it starts (`pending` leaves them out).

An index.sqlite of the previous format (batches and committed readings in it) has them
moved to index-committed.sqlite when opened; one of the format before (a `committed`
table with a path per reading) still opens, its `committed` table simply ignored (the
readings it lists are then "unknown" to `committed`; their batches are on chain all the
same).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from medchain.crypto import MerkleProof, inclusion_proofs
from medchain.gateway._batch import ReadingProof
from medchain.gateway._readings import (
    SignedReading,
    decode_signed_reading,
    encode_signed_reading,
)
from medchain.types import HASH_SIZE

_INTAKE_SCHEMA = """
CREATE TABLE IF NOT EXISTS sequences (device BLOB PRIMARY KEY, seq BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS pending (
    id BLOB PRIMARY KEY, patient BLOB NOT NULL, reading BLOB NOT NULL, accepted INTEGER
);
"""
_COMMITTED_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id BLOB PRIMARY KEY, root BLOB NOT NULL, tree_size INTEGER NOT NULL, leaves BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS committed_readings (
    id BLOB PRIMARY KEY, batch_id BLOB NOT NULL, idx INTEGER NOT NULL, device BLOB NOT NULL,
    patient BLOB NOT NULL, time_ms INTEGER NOT NULL, cid TEXT NOT NULL
) WITHOUT ROWID;
"""

CommittedRow = tuple[bytes, bytes, int, bytes, bytes, int, str]
"""One committed reading as `ReadingIndex.commit_batch` stores it: (reading id, batch id,
leaf index, device, patient, time_ms, bundle CID)."""


class _BatchProofs:
    """The audit paths of every leaf of one batch (see ReadingIndex._proofs)."""

    __slots__ = ("leaves", "paths", "root")

    def __init__(self, root: bytes, leaves: tuple[bytes, ...], paths: list[MerkleProof]):
        self.root = root
        self.leaves = leaves
        self.paths = paths


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
    """Thread-safe (a connection per file, each behind a lock): the HTTP server reads
    it while the batcher writes it. `path` may be ":memory:" for tests.
    `proof_cache_batches`: how many batches' proofs `committed` keeps in memory (about
    5 MB per 10,000 readings)."""

    def __init__(self, path: Path | str, *, proof_cache_batches: int = 4) -> None:
        self._lock = threading.Lock()
        self._committed_lock = threading.Lock()
        self._cache_lock = threading.Lock()
        self._cache: OrderedDict[bytes, _BatchProofs] = OrderedDict()
        self._cache_size = max(1, proof_cache_batches)
        committed = committed_path(path)
        self._db = _connect(path, _INTAKE_SCHEMA)
        self._committed_db = _connect(committed, _COMMITTED_SCHEMA)
        if committed != ":memory:":
            _move_committed_tables(self._db, committed)
        self._order = 0

    def close(self) -> None:
        with self._lock, self._committed_lock:
            self._db.close()
            self._committed_db.close()

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
        """Readings accepted and not yet committed, in acceptance order. Those a batch
        was recorded with (a gateway stopped before they left pending) are dropped."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, reading, patient FROM pending ORDER BY accepted"
            ).fetchall()
        done = [(bytes(rid),) for rid, _, _ in rows if self.is_committed(bytes(rid))]
        if done:
            with self._lock, self._db:
                self._db.execute("BEGIN")
                self._db.executemany("DELETE FROM pending WHERE id = ?", done)
        committed = {rid for (rid,) in done}
        return [
            PendingReading(decode_signed_reading(bytes(r)), bytes(p))
            for rid, r, p in rows
            if bytes(rid) not in committed
        ]

    def is_pending(self, reading_id: bytes) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM pending WHERE id = ?", (reading_id,)).fetchone()
        return row is not None

    # -- committed ----------------------------------------------------------------------

    def commit_batch(
        self, batch_id: bytes, root: bytes, reading_ids: Sequence[bytes], rows: list[CommittedRow]
    ) -> None:
        """Record a committed batch (its reading ids in leaf order) and its readings
        (`rows`, see CommittedRow) in one transaction, then drop them from pending:
        intake goes on meanwhile (the two are separate files)."""
        leaves = b"".join(reading_ids)
        if len(leaves) != HASH_SIZE * len(reading_ids):
            raise ValueError(f"reading ids are {HASH_SIZE} bytes each")
        with self._committed_lock, self._committed_db:
            self._committed_db.execute("BEGIN")
            self._committed_db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?)",
                (batch_id, root, len(reading_ids), leaves),
            )
            self._committed_db.executemany(
                "INSERT OR REPLACE INTO committed_readings VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )
        with self._lock, self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM pending WHERE id = ?", [(r[0],) for r in rows])
        with self._cache_lock:
            self._cache.pop(batch_id, None)  # a batch id recorded again (a retry)

    def batch_readings(self) -> dict[bytes, list[bytes]]:
        """Batch id -> the ids of its readings, in leaf order (for audits and benchmarks)."""
        with self._committed_lock:
            rows = self._committed_db.execute("SELECT id, leaves FROM batches").fetchall()
        return {bytes(batch): _split(bytes(leaves)) for batch, leaves in rows}

    def is_committed(self, reading_id: bytes) -> bool:
        """Whether the reading is committed (cheaper than `committed`: no proof)."""
        with self._committed_lock:
            row = self._committed_db.execute(
                "SELECT 1 FROM committed_readings WHERE id = ?", (reading_id,)
            ).fetchone()
        return row is not None

    def committed(self, reading_id: bytes) -> CommittedReading | None:
        """Where the reading went on chain, with its proof; None if it is not committed."""
        with self._committed_lock:
            row = self._committed_db.execute(
                "SELECT batch_id, idx, device, patient, time_ms, cid "
                "FROM committed_readings WHERE id = ?",
                (reading_id,),
            ).fetchone()
        if row is None:
            return None
        batch_id, index, device, patient, time_ms, cid = row
        batch_id, index = bytes(batch_id), int(index)
        proofs = self._proofs(batch_id)
        if proofs is None or not (
            0 <= index < len(proofs.leaves) and proofs.leaves[index] == reading_id
        ):
            return None  # not in its batch's leaves: an index this gateway did not write
        path = proofs.paths[index]
        proof = ReadingProof(reading_id, proofs.root, index, path.tree_size, path.path)
        return CommittedReading(
            reading_id, batch_id, proof, bytes(device), bytes(patient), int(time_ms), cid
        )

    def _proofs(self, batch_id: bytes) -> _BatchProofs | None:
        """Every audit path of a batch: from the cache, else computed in one pass."""
        with self._cache_lock:
            cached = self._cache.get(batch_id)
            if cached is not None:
                self._cache.move_to_end(batch_id)
                return cached
        with self._committed_lock:
            row = self._committed_db.execute(
                "SELECT root, leaves FROM batches WHERE id = ?", (batch_id,)
            ).fetchone()
        if row is None:
            return None
        leaves = tuple(_split(bytes(row[1])))
        # computed outside the locks: two threads asking a new batch at once may both
        # compute it, which is harmless and rare
        proofs = _BatchProofs(bytes(row[0]), leaves, inclusion_proofs(leaves))
        with self._cache_lock:
            self._cache[batch_id] = proofs
            self._cache.move_to_end(batch_id)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return proofs

    def committed_count(self) -> int:
        with self._committed_lock:
            (count,) = self._committed_db.execute(
                "SELECT COUNT(*) FROM committed_readings"
            ).fetchone()
        return int(count)


def committed_path(path: Path | str) -> str:
    """Where the committed side of the index at `path` lives: beside it."""
    if str(path) == ":memory:":
        return ":memory:"
    index = Path(path)
    return str(index.with_name(f"{index.stem}-committed{index.suffix}"))


def _connect(path: Path | str, schema: str) -> sqlite3.Connection:
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
    if str(path) != ":memory:":
        db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    return db


def _move_committed_tables(intake: sqlite3.Connection, committed: str) -> None:
    """An index.sqlite of the previous format kept batches and committed readings
    itself: they move to the committed file, once."""
    tables = {
        name
        for (name,) in intake.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND name IN ('batches', 'committed_readings')"
        )
    }
    if not tables:
        return
    intake.execute("ATTACH DATABASE ? AS committed", (committed,))
    try:  # copied, then dropped: stopped in between, the copy is simply made again
        intake.execute("BEGIN")
        for table in sorted(tables):
            intake.execute(f"INSERT OR IGNORE INTO committed.{table} SELECT * FROM main.{table}")
        intake.execute("COMMIT")
        intake.execute("BEGIN")
        for table in sorted(tables):
            intake.execute(f"DROP TABLE main.{table}")
        intake.execute("COMMIT")
    finally:
        intake.execute("DETACH DATABASE committed")


def _split(leaves: bytes) -> list[bytes]:
    return [leaves[i : i + HASH_SIZE] for i in range(0, len(leaves), HASH_SIZE)]
