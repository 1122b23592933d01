"""Where the committed state lives between blocks, as the `State` reads it.

A node keeps its committed state on disk (the chain store implements this protocol
with a bounded cache in front of SQLite); a simulation, a benchmark or a test keeps it
in memory (`MemoryBackend`). The `State` never writes a backend: it keeps what blocks
changed since the last `State.persisted()` in memory, and whoever persists blocks
(the node's store) writes those changes and the state tree's changed nodes with the
block, in one transaction, then calls `State.persisted()`.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from typing import Protocol

from medchain.app._state_tree import cell_of

TreeNode = tuple[int, int, bytes]
"""(level, index, hash) of one stored node of the state tree that is not the empty
subtree's hash (level 0: cell roots; 4: bucket roots; 20: the root)."""


class StateBackend(Protocol):
    """The committed state at the last persisted block."""

    def get(self, key: bytes) -> bytes | None:
        """The committed value of `key`, or None."""

    def cell_entries(self, cell: int) -> list[tuple[bytes, bytes]]:
        """Every committed entry in `cell` (`cell_of(key)`), in key order: one range
        read on disk."""

    def cell_roots(self, bucket: int) -> Mapping[int, bytes]:
        """The stored roots of `bucket`'s non-empty cells, by cell number: one range
        read on disk."""

    def tree_nodes(self) -> Iterable[TreeNode]:
        """The stored tier of the state tree, levels 4 to 20 (at most 2 * 65,536 - 1
        nodes, whatever the state's size), in any order."""

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every committed entry, in key order (an export, a fork, a snapshot)."""


class MemoryBackend:
    """A backend held in a dict: the whole state in memory, as a simulation, a
    benchmark or a test wants it. Built from entries; its tree is computed by the
    `State` on first use (it stores no tree nodes: the tree keeps them in memory)."""

    def __init__(self, entries: Mapping[bytes, bytes] | None = None) -> None:
        self._values: dict[bytes, bytes] = dict(entries or {})
        self._cells: dict[int, list[bytes]] = {}
        for key in sorted(self._values):
            self._cells.setdefault(cell_of(key), []).append(key)

    def get(self, key: bytes) -> bytes | None:
        return self._values.get(key)

    def cell_entries(self, cell: int) -> list[tuple[bytes, bytes]]:
        return [(key, self._values[key]) for key in self._cells.get(cell, ())]

    def cell_roots(self, bucket: int) -> Mapping[int, bytes]:
        return {}

    def tree_nodes(self) -> Iterable[TreeNode]:
        return ()

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(self._values):
            yield key, self._values[key]

    def cells(self) -> Iterable[int]:
        """The non-empty cells: the ones a tree over this backend must hash."""
        return self._cells.keys()

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Write committed changes (None deletes), as a store would."""
        for key, value in changes.items():
            keys = self._cells.setdefault(cell_of(key), [])
            at = bisect.bisect_left(keys, key)
            found = at < len(keys) and keys[at] == key
            if value is None:
                self._values.pop(key, None)
                if found:
                    del keys[at]
            else:
                self._values[key] = value
                if not found:
                    keys.insert(at, key)
            if not keys:
                del self._cells[cell_of(key)]

    def __len__(self) -> int:
        return len(self._values)


__all__ = ["MemoryBackend", "StateBackend", "TreeNode"]
