"""Freed memory handed back: what a worker thread freed between buffers still alive
(as the gateway's threads free device lookups and bundles) leaves the process's
resident memory once `release_freed_memory` runs."""

from __future__ import annotations

import os
import threading

from medchain.gateway._memory import release_freed_memory

CHUNK = 64 * 1024
"""Under glibc's mmap threshold: served from the thread's arena, not mapped apart."""
CHUNKS = 3_000
MB = 1_000_000


def _resident_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _fragment(kept: list[bytes]) -> None:
    """Allocate about 200 MB in this thread and free nine chunks in ten: the one kept
    in each ten pins the arena, so none of the holes is returned on its own."""
    chunks = [bytes([i % 251]) * CHUNK for i in range(CHUNKS)]  # written: resident
    kept.extend(chunks[::10])
    del chunks


def test_memory_freed_between_live_buffers_leaves_the_process() -> None:
    kept: list[bytes] = []
    worker = threading.Thread(target=_fragment, args=(kept,))
    worker.start()
    worker.join()
    freed = CHUNK * CHUNKS * 9 // 10
    before = _resident_bytes()
    assert release_freed_memory()
    after = _resident_bytes()
    assert before - after > freed // 2, (before / MB, after / MB)
    assert len(kept) == CHUNKS // 10  # what is alive stays
