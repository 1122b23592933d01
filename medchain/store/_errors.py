"""Errors of the node's embedded storage."""

from __future__ import annotations

from pathlib import Path

from medchain.types import MedchainError


class StoreError(MedchainError):
    """The store cannot do what was asked: wrong database, refused block, disk trouble.
    Nothing was written when this is raised from a write."""

    code = "store_error"


class NotFound(StoreError):
    """What was asked for is not stored (yet), e.g. the tip of a store never initialised."""

    code = "not_found"


class DiskFull(StoreError):
    """The file system holding `path` has no room left: what was being written was
    not (SQLite rolled its transaction back; a file is written whole or not at all).
    A node stops on it, and carries on from what it stored once space is freed."""

    code = "disk_full"

    def __init__(self, path: Path, free_bytes: int, what: str) -> None:
        super().__init__(
            f"the disk holding {path} is full ({free_bytes:,} bytes free): {what} was not "
            "written. Free space on that disk, then start the node again; it carries on "
            "from what it stored"
        )
        self.path = path
        self.free_bytes = free_bytes
