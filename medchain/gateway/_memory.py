"""Freed memory handed back to the system.

glibc's malloc keeps what a thread frees in that thread's arena, for its next
allocations. The gateway's worker threads free large short-lived buffers all the time
(device lookups of half a megabyte, a batch's sealed bundles and request bodies), in
holes between what stays alive, so under a steady load its resident memory grew by
about 15 MB a minute while the memory in use did not: `malloc_trim` returns the free
pages of every arena. Elsewhere than glibc there is nothing to call, and nothing done."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

TRIM_PERIOD_S = 30.0
"""How often the gateway's loop hands freed memory back."""


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


__all__ = ["TRIM_PERIOD_S", "release_freed_memory"]
