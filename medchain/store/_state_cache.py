"""The committed state a node read recently, kept in memory up to a size in bytes.

One least-recently-used cache of whole cells: a contract's read of a key reads its
cell (a few entries; an absent key is answered by its cell too), which the state tree
then rehashes if the block changes the key. Sizes are estimates of what Python
holds for each (the bytes plus a fixed overhead per object), so the bound is on the
cache's memory, not on the number of entries: whatever the state's size on disk.

The chain store applies every committed block's changes here after its transaction
commits, so a read after a commit sees the new values.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from itertools import chain
from typing import TypeVar

from cachetools import LRUCache

from medchain.app import state_cell_of

_OBJECT_BYTES = 64
"""Per cached object: the bytes object's header, its tuple and the cache's slot."""

Cell = tuple[tuple[bytes, bytes], ...]
K = TypeVar("K")
V = TypeVar("V")


def _cell_size(entries: Cell) -> int:
    """Estimated in C (map over the flattened pairs): a block sizes hundreds of cells."""
    return _OBJECT_BYTES * (1 + 3 * len(entries)) + sum(map(len, chain.from_iterable(entries)))


class StateCache:
    """Recently read cells, at most about `max_bytes` of memory."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"the state cache size must not be negative, got {max_bytes}")
        self.max_bytes = max_bytes
        self._cells: LRUCache[int, Cell] = LRUCache(max(1, max_bytes), getsizeof=_cell_size)

    @property
    def size_bytes(self) -> int:
        """What the cached cells are estimated to hold now."""
        return int(self._cells.currsize)

    def cell(self, cell: int) -> Cell | None:
        return self._cells.get(cell)

    def keep_cell(self, cell: int, entries: Cell) -> None:
        self._keep(self._cells, cell, entries)

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Bring what is cached up to date with committed changes (None: deleted)."""
        touched: dict[int, dict[bytes, bytes | None]] = {}
        for key, value in changes.items():
            touched.setdefault(state_cell_of(key), {})[key] = value
        for number, cell_changes in touched.items():
            cached = self._cells.get(number)
            if cached is not None:
                self._keep(self._cells, number, _merged(cached, cell_changes))

    def clear(self) -> None:
        """Forget everything (after a write whose outcome is unknown)."""
        self._cells.clear()

    @staticmethod
    def _keep(cache: LRUCache[K, V], key: K, value: V) -> None:
        try:
            cache[key] = value
        except ValueError:  # larger than the whole cache: read through, keep nothing
            cache.pop(key, None)


def _merged(entries: Cell, changes: Mapping[bytes, bytes | None]) -> Cell:
    keys = [key for key, _ in entries]
    merged = list(entries)
    for key in sorted(changes):
        value = changes[key]
        at = bisect.bisect_left(keys, key)
        found = at < len(keys) and keys[at] == key
        if value is None:
            if found:
                del keys[at], merged[at]
        elif found:
            merged[at] = (key, value)
        else:
            keys.insert(at, key)
            merged.insert(at, (key, value))
    return tuple(merged)
