"""The consensus WAL: every vote, proposal and round change this node signs is
written (and synced) here before it leaves the process.

A validator killed at any point restarts with a fresh engine that remembers
nothing of the height in progress. Before anything goes out, `SignLog.admit`
looks for what was signed at the same (height, round, step): the same message
passes; a different one is replaced by the original, so a restarted node never
signs two conflicting messages for one step. On start the node replays the log
into its engine, so its own earlier votes count again and it does not stall."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

from medchain.consensus import Broadcast
from medchain.store import raise_if_disk_full

_SCHEMA = """
CREATE TABLE IF NOT EXISTS signed (
    height INTEGER NOT NULL,
    round INTEGER NOT NULL,
    step TEXT NOT NULL,
    digest BLOB NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (height, round, step)
)
"""


PRUNE_EVERY = 64
"""Heights between two prunings. A pruning is a synced write on the event loop's thread
(a few ms on a slow disk, stalling the node's API meanwhile): once a height it cost
every height a second sync; rows of 64 decided heights are a few kilobytes."""


class SignLog:
    """Raises DiskFull, having recorded (and so sent) nothing, when its disk is full."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(str(path), isolation_level=None)
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute(_SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise_if_disk_full(exc, path, "the new consensus WAL")
            raise
        self.prevented = 0
        """Conflicting messages replaced by what was signed first."""
        self._next_prune = 0

    def close(self) -> None:
        self._db.close()

    def admit(self, outgoing: list[Broadcast]) -> list[bytes]:
        """The bytes to actually send, in order: messages of a new step recorded
        durably (one transaction for the batch), repeats passed, conflicts swapped for
        the original. Messages without a step (checkpoints, sync) pass as they are."""
        result: list[bytes] = []
        fresh: list[tuple[int, int, str, bytes, bytes]] = []
        first_in_batch: dict[tuple[int, int, str], tuple[bytes, bytes]] = {}
        for message in outgoing:
            if message.step is None:
                result.append(message.data)
                continue
            height, round_ = message.step
            key = (height, round_, message.kind)
            digest = hashlib.sha256(message.data).digest()
            with closing(
                self._db.execute(
                    "SELECT digest, data FROM signed WHERE height=? AND round=? AND step=?", key
                )
            ) as cursor:
                row = cursor.fetchone()
            if row is None:
                row = first_in_batch.get(key)
            if row is None:
                first_in_batch[key] = (digest, message.data)
                fresh.append((*key, digest, message.data))
                result.append(message.data)
                continue
            if bytes(row[0]) != digest:
                self.prevented += 1
            result.append(bytes(row[1]))
        if fresh:
            self._record(fresh)
        return result

    def _record(self, fresh: list[tuple[int, int, str, bytes, bytes]]) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT INTO signed VALUES (?, ?, ?, ?, ?)", fresh)
            self._db.execute("COMMIT")
        except BaseException as exc:
            if self._db.in_transaction:  # SQLite may have rolled it back itself
                self._db.execute("ROLLBACK")
            raise_if_disk_full(exc, self.path, "what this node signed")
            raise

    def since(self, height: int) -> Iterator[bytes]:
        """What was signed at `height` and above, in signing order per step."""
        with closing(
            self._db.execute(
                "SELECT data FROM signed WHERE height >= ? ORDER BY height, round, rowid",
                (height,),
            )
        ) as cursor:
            for (data,) in cursor.fetchall():
                yield bytes(data)

    def prune(self, below: int) -> None:
        """Forget steps of heights below `below` (decided: nothing can conflict there),
        in one deletion every `PRUNE_EVERY` heights."""
        if below < self._next_prune:
            return
        self._next_prune = below + PRUNE_EVERY
        try:
            self._db.execute("DELETE FROM signed WHERE height < ?", (below,))
        except sqlite3.Error as exc:
            raise_if_disk_full(exc, self.path, "the pruning of the consensus WAL")
            raise
