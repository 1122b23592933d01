"""A little of the disk held back for a node's last words.

A node that finds its disk full must still close its stores and write the line
saying why it stopped; with not one byte left it could do neither. So it keeps
`RESERVE_BYTES` allocated in `disk-reserve` in its home while it runs, and frees
them the moment it meets a full disk. Started again, it allocates them anew: on a
disk still full that fails at once, with the same message, before anything else."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from medchain.store import raise_if_disk_full

RESERVE_FILE = "disk-reserve"
RESERVE_BYTES = 1 * 2**20


def hold_disk_reserve(home: Path, size: int = RESERVE_BYTES) -> Path:
    """Make sure `size` bytes are allocated to the reserve in `home` (DiskFull if the
    disk cannot spare them); returns its path."""
    path = home / RESERVE_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.posix_fallocate(fd, 0, size)
    except OSError as exc:
        os.close(fd)
        release_disk_reserve(home)
        raise_if_disk_full(exc, path, "the node's disk reserve")
        raise
    os.close(fd)
    return path


def release_disk_reserve(home: Path) -> None:
    """Free the reserve in `home` (if it is there), for the node to stop in."""
    with contextlib.suppress(FileNotFoundError):
        (home / RESERVE_FILE).unlink()
