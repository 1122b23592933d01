"""Writing a node's own SQLite files (beside the chain store, which has its own): a
write transaction, and a full disk told apart from other failures as `DiskFull`."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from medchain.store import raise_if_disk_full


@contextlib.contextmanager
def write_transaction(db: sqlite3.Connection, path: Path, what: str) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK (unless SQLite already rolled back, as
    it may on a full disk); DiskFull, saying `what` was not written, when the disk is
    full."""
    with full_disk_raised(path, what):
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


@contextlib.contextmanager
def full_disk_raised(path: Path, what: str) -> Iterator[None]:
    """DiskFull (from the error) when what runs inside fails for a full disk."""
    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        raise_if_disk_full(exc, path, what)
        raise
