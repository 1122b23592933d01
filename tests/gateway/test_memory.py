"""The gateway's memory upkeep: cyclic garbage that its seldom collections would keep
for hours is collected, and what a worker thread freed between buffers still alive (as
the gateway's threads free device lookups and bundles) leaves the process's resident
memory."""

from __future__ import annotations

import gc
import os
import threading
import weakref

from medchain.gateway._memory import memory_upkeep, release_freed_memory

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


class _Node:
    """A response-like object in a reference cycle, holding a large body."""

    def __init__(self) -> None:
        self.me = self
        self.body = bytes(600_000)


def test_cyclic_garbage_older_than_the_young_generation_is_collected() -> None:
    thresholds = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)  # the gateway's (tune_collector)
    try:
        cycles = [_Node() for _ in range(20)]
        gc.collect(0)  # alive at a young collection: moved to an older generation
        dead = [weakref.ref(c) for c in cycles]
        del cycles
        gc.collect(0)  # the young collections that follow do not look there
        assert all(ref() is not None for ref in dead)
        memory_upkeep()
        assert all(ref() is None for ref in dead)
    finally:
        gc.set_threshold(*thresholds)
