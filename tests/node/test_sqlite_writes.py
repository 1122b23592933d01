"""A node's own SQLite files are written whole or not at all, and a full disk under
them is a DiskFull that says what was not written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medchain.node._sqlite_writes import write_transaction
from medchain.store import DiskFull


def _db(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE t (v BLOB)")
    return db


def test_a_failed_transaction_writes_nothing(tmp_path: Path) -> None:
    db = _db(tmp_path / "a.sqlite")
    with write_transaction(db, tmp_path / "a.sqlite", "the rows"):
        db.execute("INSERT INTO t VALUES (1)")
    with pytest.raises(ValueError), write_transaction(db, tmp_path / "a.sqlite", "the rows"):
        db.execute("INSERT INTO t VALUES (2)")
        raise ValueError("refused")
    assert db.execute("SELECT v FROM t").fetchall() == [(1,)] and not db.in_transaction
    db.close()


def test_a_full_disk_is_a_disk_full_naming_what_was_not_written(tmp_path: Path) -> None:
    db = _db(tmp_path / "a.sqlite")
    (pages,) = db.execute("PRAGMA page_count").fetchone()
    db.execute(f"PRAGMA max_page_count = {pages}")  # as a disk with no room left
    with (
        pytest.raises(DiskFull, match="the rows was not written"),
        write_transaction(db, tmp_path / "a.sqlite", "the rows"),
    ):
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
    assert db.execute("SELECT COUNT(*) FROM t").fetchone() == (0,) and not db.in_transaction
    db.close()
