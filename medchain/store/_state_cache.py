"""The committed state a node read recently, kept in memory up to a size in bytes.

Two least-recently-used caches share the budget half and half: single entries (what
contracts read; an absent key is cached too, as None) and whole buckets (what the
state tree rehashes when a block changes one). Sizes are estimates of what Python
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

from medchain.app import state_bucket_of

_OBJECT_BYTES = 64
"""Per cached object: the bytes object's header, its tuple and the cache's slot."""

Bucket = tuple[tuple[bytes, bytes], ...]
K = TypeVar("K")
V = TypeVar("V")


def _entry_size(value: bytes | None) -> int:
    return 2 * _OBJECT_BYTES + (0 if value is None else len(value))


def _bucket_size(entries: Bucket) -> int:
    """Estimated in C (map over the flattened pairs): a block at a large state sizes
    hundreds of buckets of about 150 entries each."""
    return _OBJECT_BYTES * (1 + 3 * len(entries)) + sum(map(len, chain.from_iterable(entries)))


class StateCache:
    """Recently read entries and buckets, at most about `max_bytes` of memory."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"the state cache size must not be negative, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: LRUCache[bytes, bytes | None] = LRUCache(
            max(1, max_bytes // 2), getsizeof=_entry_size
        )
        self._buckets: LRUCache[int, Bucket] = LRUCache(
            max(1, max_bytes - max_bytes // 2), getsizeof=_bucket_size
        )

    @property
    def size_bytes(self) -> int:
        """What the cached entries and buckets are estimated to hold now."""
        return int(self._entries.currsize + self._buckets.currsize)

    def entry(self, key: bytes) -> tuple[bool, bytes | None]:
        """(found, value): found is False when the key's value is not cached."""
        if key in self._entries:
            return True, self._entries[key]
        return False, None

    def keep_entry(self, key: bytes, value: bytes | None) -> None:
        self._keep(self._entries, key, value)

    def bucket(self, bucket: int) -> Bucket | None:
        return self._buckets.get(bucket)

    def keep_bucket(self, bucket: int, entries: Bucket) -> None:
        self._keep(self._buckets, bucket, entries)

    def apply(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Bring what is cached up to date with committed changes (None: deleted)."""
        touched: dict[int, dict[bytes, bytes | None]] = {}
        for key, value in changes.items():
            if key in self._entries:
                self._keep(self._entries, key, value)
            touched.setdefault(state_bucket_of(key), {})[key] = value
        for number, bucket_changes in touched.items():
            cached = self._buckets.get(number)
            if cached is not None:
                self._keep(self._buckets, number, _merged(cached, bucket_changes))

    def clear(self) -> None:
        """Forget everything (after a write whose outcome is unknown)."""
        self._entries.clear()
        self._buckets.clear()

    @staticmethod
    def _keep(cache: LRUCache[K, V], key: K, value: V) -> None:
        try:
            cache[key] = value
        except ValueError:  # larger than the whole cache: read through, keep nothing
            cache.pop(key, None)


def _merged(entries: Bucket, changes: Mapping[bytes, bytes | None]) -> Bucket:
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
