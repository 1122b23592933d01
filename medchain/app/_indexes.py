"""Indexes that grow without a small bound, stored one key per entry.

Keeping such an index as one value (a tuple of every member) rewrites the whole
value on each append, so the n-th append costs O(n) in bytes hashed into the state
root. These keep a count key and one key per entry: an append writes two keys, a
removal (sets only) at most four, whatever the size.
"""

from __future__ import annotations

from medchain.app._state import State

_COUNT_SIZE = 8


def _owner(prefix: bytes, owner: bytes) -> bytes:
    """Length-prefixed, so that no owner's keys run into another's."""
    assert len(owner) < 256, "an index owner is at most 255 bytes"
    return prefix + bytes([len(owner)]) + owner


def _count_key(prefix: bytes, owner: bytes) -> bytes:
    return _owner(prefix, owner) + b"n"


def _entry_key(prefix: bytes, owner: bytes, index: int) -> bytes:
    return _owner(prefix, owner) + b"e" + index.to_bytes(_COUNT_SIZE, "big")


def _position_key(prefix: bytes, owner: bytes, item: bytes) -> bytes:
    return _owner(prefix, owner) + b"p" + item


def _count(state: State, prefix: bytes, owner: bytes) -> int:
    raw = state.get(_count_key(prefix, owner))
    return int.from_bytes(raw, "big") if raw else 0


def _set_count(state: State, prefix: bytes, owner: bytes, count: int) -> None:
    if count:
        state.set(_count_key(prefix, owner), count.to_bytes(_COUNT_SIZE, "big"))
    else:
        state.delete(_count_key(prefix, owner))


class CountedList:
    """An append-only list per owner (e.g. an organisation's break-glass requests),
    in order of appending. `prefix` is a key prefix no other state key starts with."""

    def __init__(self, prefix: bytes) -> None:
        self.prefix = prefix

    def count(self, state: State, owner: bytes) -> int:
        return _count(state, self.prefix, owner)

    def append(self, state: State, owner: bytes, item: bytes) -> None:
        count = self.count(state, owner)
        state.set(_entry_key(self.prefix, owner, count), item)
        _set_count(state, self.prefix, owner, count + 1)

    def get(self, state: State, owner: bytes, index: int) -> bytes:
        """The `index`-th entry (from 0); the caller checks `index < count`."""
        item = state.get(_entry_key(self.prefix, owner, index))
        assert item is not None, "counted list has a hole"
        return item

    def items(self, state: State, owner: bytes) -> list[bytes]:
        found = [
            state.get(_entry_key(self.prefix, owner, i)) for i in range(self.count(state, owner))
        ]
        assert all(item is not None for item in found), "counted list has a hole"
        return [item for item in found if item is not None]


class CountedSet(CountedList):
    """A set per owner with O(1) add and remove: entries are packed (a removal moves
    the last entry into the hole), each item's position is kept beside it. `items`
    comes out sorted, whatever the order of changes."""

    def contains(self, state: State, owner: bytes, item: bytes) -> bool:
        return state.get(_position_key(self.prefix, owner, item)) is not None

    def add(self, state: State, owner: bytes, item: bytes) -> None:
        if self.contains(state, owner, item):
            return
        count = self.count(state, owner)
        state.set(_position_key(self.prefix, owner, item), count.to_bytes(_COUNT_SIZE, "big"))
        self.append(state, owner, item)

    def remove(self, state: State, owner: bytes, item: bytes) -> None:
        raw = state.get(_position_key(self.prefix, owner, item))
        if raw is None:
            return
        hole, last = int.from_bytes(raw, "big"), self.count(state, owner) - 1
        if hole != last:
            moved = state.get(_entry_key(self.prefix, owner, last))
            assert moved is not None, "counted set has a hole"
            state.set(_entry_key(self.prefix, owner, hole), moved)
            state.set(_position_key(self.prefix, owner, moved), raw)
        state.delete(_entry_key(self.prefix, owner, last))
        state.delete(_position_key(self.prefix, owner, item))
        _set_count(state, self.prefix, owner, last)

    def items(self, state: State, owner: bytes) -> list[bytes]:
        return sorted(super().items(state, owner))
