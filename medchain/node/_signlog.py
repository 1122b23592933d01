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

from medchain.consensus import Proposal, RoundChange, Vote, unwire
from medchain.types import DecodeError

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


def step_of(data: bytes) -> tuple[int, int, str, bytes] | None:
    """(height, round, step, digest) of a message that must never be signed twice
    with different content; None for the others (checkpoints, sync, accusations)."""
    try:
        message = unwire(data)
    except (DecodeError, KeyError, ValueError):
        return None
    if isinstance(message, Proposal):
        return message.height, message.round, "proposal", _digest(data)
    if isinstance(message, Vote):
        return message.height, message.round, str(message.kind), message.block_hash
    if isinstance(message, RoundChange):
        return message.height, message.round, "round_change", _digest(data)
    return None


def _digest(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class SignLog:
    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self.prevented = 0
        """Conflicting messages replaced by what was signed first."""

    def close(self) -> None:
        self._db.close()

    def admit(self, outgoing: list[bytes]) -> list[bytes]:
        """The messages to actually send, in order: new steps recorded durably (one
        transaction for the batch), repeats passed, conflicts swapped for the
        original."""
        result: list[bytes] = []
        fresh: list[tuple[int, int, str, bytes, bytes]] = []
        first_in_batch: dict[tuple[int, int, str], tuple[bytes, bytes]] = {}
        for data in outgoing:
            step = step_of(data)
            if step is None:
                result.append(data)
                continue
            height, round_, name, digest = step
            with closing(
                self._db.execute(
                    "SELECT digest, data FROM signed WHERE height=? AND round=? AND step=?",
                    (height, round_, name),
                )
            ) as cursor:
                row = cursor.fetchone()
            if row is None:
                row = first_in_batch.get((height, round_, name))
            if row is None:
                first_in_batch[(height, round_, name)] = (digest, data)
                fresh.append((height, round_, name, digest, data))
                result.append(data)
                continue
            if bytes(row[0]) != digest:
                self.prevented += 1
            result.append(bytes(row[1]))
        if fresh:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO signed VALUES (?, ?, ?, ?, ?)", fresh)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return result

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
        """Forget steps of heights below `below` (decided: nothing can conflict there)."""
        self._db.execute("DELETE FROM signed WHERE height < ?", (below,))
