"""A fixed view of the stored state at the tip, read on a connection of its own.

A snapshot reads the whole state while the node keeps committing blocks. SQLite's WAL
gives a read transaction the database as it was when the transaction first read, for
as long as it stays open, so the view reads one height's state however many blocks
land meanwhile (the WAL cannot be checkpointed past the view until it closes).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from medchain.store._errors import StoreError
from medchain.store._stored_state import cell_rows


class StateView(contextlib.AbstractContextManager["StateView"]):
    """The chain's tip and its state, as one read transaction sees them.

    Opened by `ChainStore.state_view()` on the thread that commits (so it sees the block
    just committed) and then read from one other thread: its connection is its own."""

    def __init__(self, path: Path) -> None:
        self._path = path
        try:
            db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open a read view of {path}: {exc}") from exc
        self._db: sqlite3.Connection | None = db
        try:
            db.execute("BEGIN")
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            (hash_,) = db.execute(
                "SELECT hash FROM blocks WHERE height = ?", (meta["latest_height"],)
            ).fetchone()
        except (sqlite3.Error, KeyError, TypeError) as exc:
            self.close()
            raise StoreError(
                f"cannot read the tip of {path} ({exc}); initialise the store first"
            ) from exc
        self.chain_id: str = meta["chain_id"]
        self.height: int = meta["latest_height"]
        self.state_root: bytes = bytes(meta["state_root"])
        self.block_hash: bytes = bytes(hash_)

    def cell_entries(self) -> Iterator[tuple[int, bytes, bytes]]:
        """Every entry as (cell, key, value): cell by cell (so bucket by bucket), each
        in key order, read in the state table's own order (no sort), a batch at a
        time."""
        return cell_rows(self._conn())

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the read view of {self._path} is closed")
        return self._db

    def close(self) -> None:
        """End the read transaction (the WAL may be checkpointed again) and close."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __exit__(self, *exc_info: object) -> None:
        self.close()


__all__ = ["StateView"]
