"""The world state: a key-value map with nested write layers, over a backend.

A block opens a layer; each transaction opens a layer above it, and each call
another, so a refused call or transaction is dropped without a trace while the
block's net changes can be handed to the store in one piece. Values are canonical
encodings of the contracts' dataclasses; typed helpers live in `load`/`save`.

The committed entries live in a `StateBackend` (on a node: the chain store, on disk,
behind a bounded cache). What committed blocks changed stays in memory until the
store has written it with its block (`unpersisted`, then `persisted`), so the memory
a node needs depends on a block's size, not on the state's.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from medchain.app._state_backend import MemoryBackend, StateBackend
from medchain.app._state_tree import DEFAULT_LEAF_CACHE, NodeKey, StateTree, cell_of
from medchain.types import decode, encode

T = TypeVar("T")

_DELETED = None


@dataclass(frozen=True, slots=True)
class StateDelta:
    """What committed blocks changed since the backend was last written: the entries
    (key order, None = deleted) and the state tree's nodes ((level, index) order,
    None = the empty subtree's hash again, i.e. no row)."""

    changes: dict[bytes, bytes | None]
    nodes: dict[NodeKey, bytes | None]


class State:
    def __init__(
        self,
        committed: StateBackend | Mapping[bytes, bytes] | None = None,
        *,
        leaf_cache: int | None = DEFAULT_LEAF_CACHE,
    ) -> None:
        """`committed`: a backend (the node's store), or entries to hold in memory.
        `leaf_cache` bounds the entries whose leaf hashes the tree keeps; a state held
        in memory keeps them all, as it keeps the entries."""
        if committed is None or isinstance(committed, Mapping):
            committed = MemoryBackend(committed)
        self._backend: StateBackend = committed
        self._overlay: dict[bytes, bytes | None] = {}
        """Committed changes the backend does not hold yet (None = deleted)."""
        self._overlay_cells: dict[int, set[bytes]] = {}
        """The overlay's keys, by cell: a cell read merges only its own."""
        self._unindexed: list[bytes] = []
        """Overlay keys not yet in `_overlay_cells` (indexed on the next cell read: most
        blocks' cells are in the tree's cache and never read)."""
        self._layers: list[dict[bytes, bytes | None]] = []
        in_memory = committed if isinstance(committed, MemoryBackend) else None
        self._tree = StateTree(
            self._read_cell,
            committed.cell_roots,
            committed.tree_nodes(),
            dirty=() if in_memory is None else in_memory.cells(),
            leaf_cache=leaf_cache if in_memory is None else None,
        )
        """The commitment, kept between blocks so a block rehashes only what it changed."""

    # -- raw access -----------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        for layer in reversed(self._layers):
            if key in layer:
                return layer[key]
        return self._committed_value(key)

    def _committed_value(self, key: bytes) -> bytes | None:
        if key in self._overlay:
            return self._overlay[key]
        return self._backend.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._top()[key] = value

    def delete(self, key: bytes) -> None:
        self._top()[key] = _DELETED

    def _top(self) -> dict[bytes, bytes | None]:
        if not self._layers:
            raise RuntimeError("state writes happen inside State.layer()")
        return self._layers[-1]

    def _read_cell(self, cell: int) -> list[tuple[bytes, bytes]]:
        """A cell's committed entries in key order: the backend's, as the overlay
        changed them."""
        for key in self._unindexed:
            self._overlay_cells.setdefault(cell_of(key), set()).add(key)
        self._unindexed.clear()
        changed = self._overlay_cells.get(cell)
        entries = self._backend.cell_entries(cell)
        if not changed:
            return entries
        merged = dict(entries)
        for key in changed:
            value = self._overlay[key]
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        return [(key, merged[key]) for key in sorted(merged)]

    # -- layers ---------------------------------------------------------------------

    @contextmanager
    def layer(self) -> Iterator[None]:
        """Writes inside the block land in the enclosing layer only if it exits cleanly."""
        self._layers.append({})
        try:
            yield
        except BaseException:
            self._layers.pop()
            raise
        top = self._layers.pop()
        if self._layers:
            self._layers[-1].update(top)
        else:
            self._apply(top)

    def begin_block(self) -> None:
        """Open the block layer whose net changes `end_block` returns."""
        if self._layers:
            raise RuntimeError("a block is already open")
        self._layers.append({})

    def end_block(self) -> dict[bytes, bytes | None]:
        """Commit the block layer; return its changes in key order (None = deleted)."""
        if len(self._layers) != 1:
            raise RuntimeError("end_block without a matching begin_block")
        changes = self._layers.pop()
        self._apply(changes)
        return {k: changes[k] for k in sorted(changes)}

    def discard_block(self) -> None:
        if len(self._layers) != 1:
            raise RuntimeError("discard_block without a matching begin_block")
        self._layers.pop()

    def _apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        real = self._real(changes)
        self._overlay.update(real)
        self._unindexed.extend(real)
        self._tree.update(real)

    def _real(self, changes: Mapping[bytes, bytes | None]) -> dict[bytes, bytes | None]:
        """The changes that change something (a write of the same value, or a delete of
        an absent key, does not)."""
        return {k: v for k, v in changes.items() if self._committed_value(k) != v}

    # -- persistence ----------------------------------------------------------------

    def unpersisted(self) -> StateDelta:
        """What committed blocks changed since `persisted`: for the store to write with
        the block, in one transaction."""
        if self._layers:
            raise RuntimeError("the state is persisted only between blocks")
        nodes = self._tree.take_changed_nodes()
        return StateDelta({k: self._overlay[k] for k in sorted(self._overlay)}, nodes)

    def persisted(self) -> None:
        """The backend now holds everything `unpersisted` gave: stop keeping it."""
        if self._layers:
            raise RuntimeError("the state is persisted only between blocks")
        self._overlay.clear()
        self._overlay_cells.clear()
        self._unindexed.clear()
        self._tree.persisted()

    # -- commitments ----------------------------------------------------------------

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every committed entry in key order, streamed from the backend (an export, a
        fork, a snapshot: the whole state never needs to be in memory)."""
        pending = sorted(self._overlay)
        at = 0
        for key, value in self._backend.entries():
            while at < len(pending) and pending[at] < key:
                if (changed := self._overlay[pending[at]]) is not None:
                    yield pending[at], changed
                at += 1
            if at < len(pending) and pending[at] == key:
                changed = self._overlay[key]
                at += 1
                if changed is not None:
                    yield key, changed
            else:
                yield key, value
        for key in pending[at:]:
            if (changed := self._overlay[key]) is not None:
                yield key, changed

    def committed(self) -> dict[bytes, bytes]:
        """A copy of the committed map, sorted by key (the whole state, in memory)."""
        return dict(self.entries())

    def tree_nodes(self) -> list[tuple[int, int, bytes]]:
        """Every node a store keeps of the state tree, for a store that starts from this
        state (held in memory)."""
        return self._tree.nodes()

    def check_tree(self) -> None:
        """Raise ValueError if the stored tree is not consistent in itself."""
        self._tree.check()

    def root(self) -> bytes:
        """The root of the committed entries' Merkle tree (`_state_tree`)."""
        if self._layers:
            raise RuntimeError("the state root is defined only between blocks")
        return self._tree.root()

    def open_block_changes(self) -> dict[bytes, bytes | None]:
        """The open block layer's changes so far, in key order (None = deleted)."""
        if len(self._layers) != 1:
            raise RuntimeError("open_block_changes needs exactly the block layer open")
        changes = self._layers[0]
        return {k: changes[k] for k in sorted(changes)}

    def pending_root(self) -> bytes:
        """The root the state would have if the open block were committed now."""
        if len(self._layers) != 1:
            raise RuntimeError("pending_root needs exactly the block layer open")
        return self._tree.root_with(self._real(self._layers[0]))

    def copy(self) -> State:
        """An independent state in memory with the same committed entries."""
        if self._layers:
            raise RuntimeError("copy the state only between blocks")
        return State(self.committed())


def load(state: State, key: bytes, cls: type[T]) -> T | None:
    raw = state.get(key)
    return None if raw is None else decode(cls, raw)


def save(state: State, key: bytes, obj: Any) -> None:
    state.set(key, encode(obj))
