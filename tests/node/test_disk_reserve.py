"""The disk reserve: allocated while a node runs, freed for it to stop in, and a
disk that cannot spare it refused with DiskFull."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from medchain.node import (
    RESERVE_BYTES,
    RESERVE_FILE,
    hold_disk_reserve,
    release_disk_reserve,
)
from medchain.store import DiskFull


def test_the_reserve_is_allocated_once_and_freed(tmp_path: Path) -> None:
    path = hold_disk_reserve(tmp_path)
    assert path == tmp_path / RESERVE_FILE
    assert path.stat().st_size == RESERVE_BYTES
    assert path.stat().st_blocks * 512 >= RESERVE_BYTES  # blocks really taken
    assert hold_disk_reserve(tmp_path).stat().st_size == RESERVE_BYTES  # kept as it is
    release_disk_reserve(tmp_path)
    assert not path.exists()
    release_disk_reserve(tmp_path)  # nothing to free: fine


def test_a_disk_that_cannot_spare_it_is_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    with pytest.raises(DiskFull) as caught:
        hold_disk_reserve(tmp_path)
    assert "the node's disk reserve was not written" in caught.value.message
    assert not (tmp_path / RESERVE_FILE).exists()
