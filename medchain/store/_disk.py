"""Telling a full disk from other write failures, for every file a node writes.

SQLite reports a full disk as SQLITE_FULL (its extended codes keep that primary
code), or as SQLITE_IOERR_SHMSIZE when the WAL's shared-memory index cannot grow
(it writes one byte per page to allocate it, so a tmpfs never faults on it); the
operating system as ENOSPC, or EDQUOT when a quota is used up. Each is named here
once, so the chain store, the consensus WAL, the body ledger, the blob store and the
log all raise the same `DiskFull`."""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from medchain.store._errors import DiskFull

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc` says the disk (or the writer's quota on it) is full."""
    if isinstance(exc, DiskFull):
        return True
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", 0)
        return code & 0xFF == sqlite3.SQLITE_FULL or code == sqlite3.SQLITE_IOERR_SHMSIZE
    if isinstance(exc, OSError):
        return exc.errno in _FULL_ERRNOS
    return False


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the file system holding `path`
    (or its nearest existing parent); -1 if even that cannot be asked."""
    for candidate in (Path(path), *Path(path).parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return -1


def disk_full(path: Path, what: str) -> DiskFull:
    """The error saying `what` could not be written at `path` for lack of space."""
    shown = Path(path).absolute()
    return DiskFull(shown, free_bytes(shown), what)


def raise_if_disk_full(exc: BaseException, path: Path, what: str) -> None:
    """Raise `DiskFull` (from `exc`) when `exc` says the disk is full; else return,
    for the caller to re-raise or report `exc` as it would have."""
    if isinstance(exc, DiskFull):
        raise exc
    if is_disk_full(exc):
        raise disk_full(path, what) from exc
