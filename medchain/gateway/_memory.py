"""Garbage collected and freed memory handed back to the system, on a clock.

The gateway collects cyclic garbage seldom (medchain.gateway._intake.tune_collector:
its young generation every 100,000 allocations, the older ones every 50 and 5,000 of
those, hours apart at a modest load). Whatever sits in a reference cycle and is still
alive at a young collection (an HTTP response from the node, with its half-megabyte
body, a request in flight) is then kept for hours after it dies: under a steady load of
100 readings a second the gateway grew by about 15 MB a minute. A full collection every
`UPKEEP_PERIOD_S` bounds that garbage by time instead (a full collection walks every
tracked object: twice a minute, not at every few thousand allocations as by default).

What is freed, glibc's malloc keeps in the arena of the thread that freed it, for its
next allocations, in holes between buffers still alive (the gateway's worker threads
free device lookups, sealed bundles and request bodies all the time): `malloc_trim`
returns the free pages of every arena. Elsewhere than glibc there is nothing to call."""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable

UPKEEP_PERIOD_S = 30.0
"""How often the gateway's loop collects garbage and hands freed memory back."""


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_freed_memory() -> bool:
    """Return the free pages of every malloc arena to the system; whether any were
    (always False where malloc has no `malloc_trim`)."""
    return _TRIM is not None and bool(_TRIM(0))


def memory_upkeep() -> None:
    """Collect every generation's cyclic garbage, then release what that freed."""
    gc.collect()
    release_freed_memory()


__all__ = ["UPKEEP_PERIOD_S", "memory_upkeep", "release_freed_memory"]
