"""Keeping a chain store's files compact: its WAL checkpointed and truncated, and the
pages deletes freed handed back to the file system.

SQLite checkpoints its WAL by itself on commit (PASSIVE: it never waits), but the
WAL file keeps its largest size, and a checkpoint that a reader holds back lets it
grow further. A new store is created with `auto_vacuum=INCREMENTAL`, so pages freed
by deleted state stay on a free list until `PRAGMA incremental_vacuum` returns them
(a store created before that keeps its free pages for reuse, and never shrinks).

`StoreMaintainer` does both from a connection of its own, so a node can run it in a
worker thread between commits, off its event loop; it waits for the write lock at
most `busy_timeout_s` and otherwise tries again the next time."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from medchain.store._disk import raise_if_disk_full
from medchain.store._errors import StoreError

WAL_SUFFIX = "-wal"
_WAIT_CODES = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
VACUUM_PAGES = 16_384
"""Free pages one maintenance run returns at most (64 MiB of 4 KiB pages)."""
JOURNAL_SIZE_LIMIT = 64 * 2**20
"""The WAL file is cut back to this size whenever SQLite restarts it."""


def configure_compaction(db: sqlite3.Connection) -> None:
    """Pragmas for a compact file, set when a connection opens. `auto_vacuum` must be
    set before WAL mode and takes effect only on a database with no tables yet."""
    db.execute("PRAGMA auto_vacuum=INCREMENTAL")
    db.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")


@dataclass(frozen=True, slots=True)
class StoreFiles:
    """Bytes on disk of a store's database file and of its WAL."""

    file_bytes: int
    wal_bytes: int


def store_files(path: Path) -> StoreFiles:
    """The sizes of the store at `path` now (0 for a file not there)."""
    return StoreFiles(_size(Path(path)), _size(Path(f"{path}{WAL_SUFFIX}")))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


@dataclass(frozen=True, slots=True)
class Maintained:
    """What one maintenance run did."""

    freed_pages: int
    """Free pages handed back to the file system."""
    checkpointed: bool
    """The whole WAL was copied into the database and the WAL file truncated (False
    when another connection held it back: the next run does it)."""
    files: StoreFiles


class StoreMaintainer:
    """Checkpoint and vacuum the chain store at `path` (an existing store), from one
    thread at a time."""

    def __init__(self, path: Path, busy_timeout_s: float = 0.5) -> None:
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path} to maintain it: {exc}") from exc

    def close(self) -> None:
        self._db.close()

    def run(self, vacuum_pages: int = VACUUM_PAGES) -> Maintained:
        """Return up to `vacuum_pages` free pages to the file system, then checkpoint
        the WAL and truncate it. Raises DiskFull if the disk is full."""
        try:
            freed = self._vacuum(vacuum_pages)
            busy, _, _ = self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            raise_if_disk_full(exc, self.path, "the maintenance of the chain store")
            if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in _WAIT_CODES:
                raise StoreError(f"could not maintain {self.path}: {exc}") from exc
            return Maintained(0, False, store_files(self.path))  # a writer held it
        return Maintained(freed, busy == 0, store_files(self.path))

    def _vacuum(self, limit: int) -> int:
        """sqlite3 steps a statement without result columns once, and each step of
        `incremental_vacuum` frees one page: so one page per statement, all of them in
        one transaction."""
        (free,) = self._db.execute("PRAGMA freelist_count").fetchone()
        pages = min(int(free), limit)
        if pages <= 0:
            return 0
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for _ in range(pages):
                self._db.execute("PRAGMA incremental_vacuum(1)")
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.rollback()
            raise
        (left,) = self._db.execute("PRAGMA freelist_count").fetchone()
        return int(free) - int(left)
