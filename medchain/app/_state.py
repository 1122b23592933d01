"""The world state: a key-value map with nested write layers.

A block opens a layer; each transaction opens a layer above it, and each call
another, so a refused call or transaction is dropped without a trace while the
block's net changes can be handed to the store in one piece. Values are canonical
encodings of the contracts' dataclasses; typed helpers live in `load`/`save`.
"""

from __future__ import annotations

import bisect
import heapq
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

from medchain.crypto import leaf_hash, merkle_root_of_hashes
from medchain.types import decode, encode

T = TypeVar("T")

_DELETED = None


class State:
    def __init__(self, committed: Mapping[bytes, bytes] | None = None) -> None:
        self._committed: dict[bytes, bytes] = dict(committed or {})
        self._layers: list[dict[bytes, bytes | None]] = []
        # Kept between roots so a block rehashes only the leaves it changed: the
        # committed keys in order, and the leaf hash of each committed entry.
        self._sorted_keys: list[bytes] = sorted(self._committed)
        self._leaf_hashes: dict[bytes, bytes] = {}
        self._root: bytes | None = None
        """The committed root, until a change to the committed entries."""

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
        keys = self._sorted_keys
        if changes:
            self._root = None
        for key, value in changes.items():
            self._leaf_hashes.pop(key, None)
            if value is None:
                if self._committed.pop(key, None) is not None:
                    del keys[bisect.bisect_left(keys, key)]
            else:
                if key not in self._committed:
                    bisect.insort(keys, key)
                self._committed[key] = value

    def _committed_leaf(self, key: bytes) -> bytes:
        cached = self._leaf_hashes.get(key)
        if cached is None:
            cached = self._leaf_hashes[key] = _leaf(key, self._committed[key])
        return cached

    # -- commitments ----------------------------------------------------------------

    def committed(self) -> dict[bytes, bytes]:
        """A copy of the committed map, sorted by key."""
        return {k: self._committed[k] for k in sorted(self._committed)}

    def root(self) -> bytes:
        """Merkle root (RFC 6962) over the committed entries in key order."""
        if self._layers:
            raise RuntimeError("the state root is defined only between blocks")
        return self._committed_root()

    def _committed_root(self) -> bytes:
        if self._root is None:
            self._root = merkle_root_of_hashes([self._committed_leaf(k) for k in self._sorted_keys])
        return self._root

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
        changes = self._layers[0]
        if all(self._committed.get(k) == v for k, v in changes.items()):
            return self._committed_root()  # nothing changes (an idle chain's empty blocks)
        added = sorted(k for k, v in changes.items() if v is not None and k not in self._committed)
        hashes = []
        for key in heapq.merge(self._sorted_keys, added):
            if key in changes:
                value = changes[key]
                if value is not None:
                    hashes.append(_leaf(key, value))
            else:
                hashes.append(self._committed_leaf(key))
        return merkle_root_of_hashes(hashes)

    def copy(self) -> State:
        if self._layers:
            raise RuntimeError("copy the state only between blocks")
        return State(self._committed)


def _leaf(key: bytes, value: bytes) -> bytes:
    """The state tree's leaf for one entry: length-prefixed key, then value."""
    return leaf_hash(len(key).to_bytes(4, "big") + key + value)


def load(state: State, key: bytes, cls: type[T]) -> T | None:
    raw = state.get(key)
    return None if raw is None else decode(cls, raw)


def save(state: State, key: bytes, obj: Any) -> None:
    state.set(key, encode(obj))
