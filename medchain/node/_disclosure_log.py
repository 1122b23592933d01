"""A node's accounting of disclosures: every read it serves, append-only and
hash-chained in an SQLite file of its data directory (`DISCLOSURES_FILE`).

Entry n is the `Disclosure`, the node's address and a random salt
(`LoggedDisclosure`); head_n chains its hash onto head_{n-1} (`medchain.types`).
The node commits a head on chain now and then (`DisclosureCommitter`), after which
it cannot change, drop or reorder an entry up to that head unnoticed.

`append` runs on the event loop for every read served, so it only hashes and queues:
a writer thread writes the queue in batches, one transaction each. Queries see the
queued entries too. Only what is written is `durable`, and only that is committed
on chain: entries queued when the process dies were never committed, and the log
goes on from the last one written. A log that failed to write (a full disk) refuses
every further append, so the node refuses the reads it cannot account for.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from medchain.node._sqlite_writes import full_disk_raised, write_transaction
from medchain.store import DiskFull
from medchain.types import (
    HEAD_ZERO,
    SALT_SIZE,
    Disclosure,
    LoggedDisclosure,
    MedchainError,
    decode,
    encode,
    encoded_entry_hash,
    entry_hash,
    first_disagreement,
    next_head,
)

log = logging.getLogger("medchain.node.disclosures")

DISCLOSURES_FILE = "disclosures.sqlite"
WRITE_BATCH = 1_000
"""Most entries one write transaction takes."""
LINGER_S = 0.005
"""How long the writer lets reads gather once one is queued: at hundreds of reads a
second, one transaction for several of them instead of one each (each wakes the writer
thread, which then competes with the event loop for the interpreter)."""


class DisclosureLogFailed(MedchainError):
    """The log cannot record reads (closed, or a write failed): reads are refused."""

    code = "disclosure_log_failed"


@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    """Position in the log, from 1."""
    entry: LoggedDisclosure
    hash: bytes
    head: bytes
    encoded: bytes
    """The entry's canonical encoding, as stored (kept from `append` to the write)."""


class SqliteDisclosureLog:
    """The `DisclosureLog` of a node with a data directory. `node` is the address
    written into each entry (the node's validator account)."""

    def __init__(
        self,
        path: Path | str,
        node: bytes,
        *,
        on_disk_full: Callable[[DiskFull], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.node = node
        self.on_disk_full = on_disk_full
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        with full_disk_raised(self.path, "the new disclosure log"):
            self._create()
        self._reader = sqlite3.connect(str(path), check_same_thread=False)
        """Queries' own connection: the writer thread has `_db` to itself."""
        self._read_lock = threading.Lock()
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._pending: list[LogEntry] = []
        self._durable_seq, self._durable_head = self._last_written()
        self._seq, self._head = self._durable_seq, self._durable_head
        self._failure: str | None = None
        self._closing = False
        self._writer = threading.Thread(target=self._write_loop, name="disclosure-log", daemon=True)
        self._writer.start()

    def _create(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS entries (
                seq INTEGER PRIMARY KEY, patient BLOB NOT NULL, record_id BLOB NOT NULL,
                entry BLOB NOT NULL, hash BLOB NOT NULL, head BLOB NOT NULL);
            CREATE INDEX IF NOT EXISTS entries_by_patient ON entries (patient, seq);
            """
        )

    def _last_written(self) -> tuple[int, bytes]:
        row = self._db.execute("SELECT seq, head FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        return (0, HEAD_ZERO) if row is None else (int(row[0]), bytes(row[1]))

    # -- writing ----------------------------------------------------------------------

    def append(self, disclosure: Disclosure) -> None:
        """Queue the read as the next entry; DisclosureLogFailed if the log can no
        longer be written (the caller refuses the read)."""
        entry = LoggedDisclosure(disclosure, self.node, secrets.token_bytes(SALT_SIZE))
        encoded = encode(entry)
        hash_ = encoded_entry_hash(encoded)
        with self._lock:
            if self._failure is not None or self._closing:
                raise DisclosureLogFailed(
                    f"this node cannot record reads ({self._failure or 'closing'}); "
                    "read through another node"
                )
            self._seq += 1
            self._head = next_head(self._head, hash_)
            self._pending.append(LogEntry(self._seq, entry, hash_, self._head, encoded))
            if len(self._pending) == 1:  # else the writer is busy and will find it
                self._wake.notify()

    def _write_loop(self) -> None:
        while True:
            with self._lock:
                while not self._pending and not self._closing:
                    self._wake.wait()
                if not self._pending:
                    return
                if not self._closing and len(self._pending) < WRITE_BATCH:
                    self._wake.wait(LINGER_S)  # only closing cuts it short
                batch = self._pending[:WRITE_BATCH]
            try:
                self._write(batch)
            except Exception as exc:
                self._fail(exc)
                return
            with self._lock:
                del self._pending[: len(batch)]
                self._durable_seq, self._durable_head = batch[-1].seq, batch[-1].head
                self._wake.notify_all()

    def _write(self, batch: list[LogEntry]) -> None:
        rows = [
            (e.seq, e.entry.disclosure.patient, e.entry.disclosure.record_id,
             e.encoded, e.hash, e.head)
            for e in batch
        ]  # fmt: skip
        with write_transaction(self._db, self.path, "the disclosure log's new entries"):
            self._db.executemany("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?)", rows)

    def _fail(self, exc: Exception) -> None:
        log.error("the disclosure log could not be written: %s", exc)
        with self._lock:
            self._failure = str(exc)
            self._wake.notify_all()
        if isinstance(exc, DiskFull) and self.on_disk_full is not None:
            self.on_disk_full(exc)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Wait until every queued entry is written; False if it failed or timed out."""
        with self._lock:
            self._wake.wait_for(lambda: not self._pending or self._failure is not None, timeout_s)
            return not self._pending

    def close(self) -> None:
        """Write what is queued, then stop."""
        with self._lock:
            self._closing = True
            self._wake.notify_all()
        self._writer.join()
        self._db.close()
        self._reader.close()

    # -- reading ----------------------------------------------------------------------

    @property
    def length(self) -> int:
        """Entries appended (written or queued)."""
        with self._lock:
            return self._seq

    @property
    def durable(self) -> tuple[int, bytes]:
        """(seq, head) of the last entry written to disk: what may be committed."""
        with self._lock:
            return self._durable_seq, self._durable_head

    def _snapshot(self) -> tuple[int, list[LogEntry]]:
        with self._lock:
            return self._durable_seq, list(self._pending)

    def entries_of(self, patient: bytes, record_id: bytes = b"") -> list[LogEntry]:
        """The patient's entries (of one record, if given), in order."""
        durable, pending = self._snapshot()
        query = "SELECT seq, entry, hash, head FROM entries WHERE patient = ? AND seq <= ?"
        params: tuple[bytes | int, ...] = (patient, durable)
        if record_id:
            query += " AND record_id = ?"
            params += (record_id,)
        with self._read_lock:
            rows = self._reader.execute(query + " ORDER BY seq", params).fetchall()
        found = [_entry(row) for row in rows]
        return found + [
            e
            for e in pending
            if e.entry.disclosure.patient == patient
            and (not record_id or e.entry.disclosure.record_id == record_id)
        ]

    def hashes(self, first: int, last: int) -> list[bytes]:
        """The stored entry hashes of seq `first` to `last` (inclusive), as far as the
        log goes."""
        durable, pending = self._snapshot()
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT hash FROM entries WHERE seq BETWEEN ? AND ? ORDER BY seq",
                (first, min(last, durable)),
            ).fetchall()
        return [bytes(r[0]) for r in rows] + [e.hash for e in pending if first <= e.seq <= last]

    def written(self) -> list[LogEntry]:
        """Every entry on disk, in order, as stored (nothing recomputed)."""
        with self._read_lock:
            return list(_written(self._reader))

    def disagreement(self, commits: list[tuple[int, bytes]]) -> int:
        """The first committed (seq, head) the entries on disk do not give, their hashes
        recomputed from the entries themselves; 0 if all agree."""
        return first_disagreement([entry_hash(e.entry) for e in self.written()], commits)


def check_log_file(path: Path, commits: list[tuple[int, bytes]]) -> tuple[int, int]:
    """(entries on disk, first disagreement with `commits` or 0) of the log at `path`,
    opened read-only (its node may be running), every hash recomputed from its entry."""
    if not path.exists():
        raise MedchainError(f"no disclosure log at {path}; check the node's home directory")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        hashes = [entry_hash(e.entry) for e in _written(db)]
    finally:
        db.close()
    return len(hashes), first_disagreement(hashes, commits)


def _written(db: sqlite3.Connection) -> Iterator[LogEntry]:
    for row in db.execute("SELECT seq, entry, hash, head FROM entries ORDER BY seq"):
        yield _entry(row)


def _entry(row: tuple[int, bytes, bytes, bytes]) -> LogEntry:
    seq, raw, hash_, head = row
    encoded = bytes(raw)
    return LogEntry(int(seq), decode(LoggedDisclosure, encoded), bytes(hash_), bytes(head), encoded)


@runtime_checkable
class DisclosureRecords(Protocol):
    """What the API reads of a node's log (`SqliteDisclosureLog` has it)."""

    node: bytes

    @property
    def length(self) -> int: ...

    def entries_of(self, patient: bytes, record_id: bytes = b"") -> list[LogEntry]: ...

    def hashes(self, first: int, last: int) -> list[bytes]: ...
