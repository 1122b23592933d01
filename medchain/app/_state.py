"""The world state: a key-value map with nested write layers.

A block opens a layer; each transaction opens a layer above it, and each call
another, so a refused call or transaction is dropped without a trace while the
block's net changes can be handed to the store in one piece. Values are canonical
encodings of the contracts' dataclasses; typed helpers live in `load`/`save`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from medchain.app._state_tree import StateTree
from medchain.types import decode, encode

T = TypeVar("T")

_DELETED = None


class State:
    def __init__(self, committed: Mapping[bytes, bytes] | None = None) -> None:
        self._committed: dict[bytes, bytes] = dict(committed or {})
        self._layers: list[dict[bytes, bytes | None]] = []
        self._tree = StateTree(self._committed)
        """The commitment, kept between blocks so a block rehashes only what it changed."""

    # -- raw access -----------------------------------------------------------------

    def get(self, key: bytes) -> bytes | None:
        for layer in reversed(self._layers):
            if key in layer:
                return layer[key]
        return self._committed.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._top()[key] = value

    def delete(self, key: bytes) -> None:
        self._top()[key] = _DELETED

    def _top(self) -> dict[bytes, bytes | None]:
        if not self._layers:
            raise RuntimeError("state writes happen inside State.layer()")
        return self._layers[-1]

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
        for key, value in real.items():
            if value is None:
                del self._committed[key]
            else:
                self._committed[key] = value
        self._tree.update(real)

    def _real(self, changes: Mapping[bytes, bytes | None]) -> dict[bytes, bytes | None]:
        """The changes that change something (a write of the same value, or a delete of
        an absent key, does not)."""
        return {k: v for k, v in changes.items() if self._committed.get(k) != v}

    # -- commitments ----------------------------------------------------------------

    def committed(self) -> dict[bytes, bytes]:
        """A copy of the committed map, sorted by key."""
        return {k: self._committed[k] for k in sorted(self._committed)}

    def root(self) -> bytes:
        """The root of the committed entries' two-tier Merkle tree (`_state_tree`)."""
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
        if self._layers:
            raise RuntimeError("copy the state only between blocks")
        return State(self._committed)


def load(state: State, key: bytes, cls: type[T]) -> T | None:
    raw = state.get(key)
    return None if raw is None else decode(cls, raw)


def save(state: State, key: bytes, obj: Any) -> None:
    state.set(key, encode(obj))
