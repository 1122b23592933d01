"""The state's commitment: RFC 6962 Merkle trees in two tiers, so a block rehashes what it
changed and not the whole state.

Each entry falls in one of 65,536 buckets, chosen by the first two bytes of SHA-256 of
its key. A bucket's root is the RFC 6962 tree hash of its entries' leaves in key order
(the empty bucket's root is SHA-256 of nothing, as for any empty tree), and the state
root is the RFC 6962 tree hash of the 65,536 bucket roots, taken as leaf hashes: a
perfect tree 16 levels deep. One tree over every entry in key order, as before, cost a
hash per entry at every block; here a change costs its bucket (about n / 65,536
entries) and the 16 nodes above it, and an entry is still proven by two audit paths.

The upper tree is stored sparsely: a node whose subtree holds only empty buckets is
never stored, its hash being the same at every position of its level.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping

from medchain.crypto import leaf_hash, merkle_root_of_hashes

BUCKET_BITS = 16
BUCKETS = 1 << BUCKET_BITS

_NODE_PREFIX = b"\x01"


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _empty_subtrees() -> tuple[bytes, ...]:
    hashes = [hashlib.sha256(b"").digest()]
    for _ in range(BUCKET_BITS):
        hashes.append(_node(hashes[-1], hashes[-1]))
    return tuple(hashes)


EMPTY = _empty_subtrees()
"""EMPTY[level]: the hash of a subtree of 2**level empty buckets (level 0: one bucket)."""


def bucket_of(key: bytes) -> int:
    """The bucket a key's entry falls in: spread evenly whatever the keys' prefixes."""
    return int.from_bytes(hashlib.sha256(key).digest()[:2], "big")


def entry_leaf(key: bytes, value: bytes) -> bytes:
    """The leaf hash of one entry: length-prefixed key, then value."""
    return leaf_hash(len(key).to_bytes(4, "big") + key + value)


def state_root_of(entries: Mapping[bytes, bytes]) -> bytes:
    """The state root of `entries` computed from scratch, by the definition above: the
    reference the incremental `StateTree` must always equal."""
    buckets: dict[int, list[bytes]] = {}
    for key in sorted(entries):
        buckets.setdefault(bucket_of(key), []).append(entry_leaf(key, entries[key]))
    roots = [EMPTY[0]] * BUCKETS
    for bucket, leaves in buckets.items():
        roots[bucket] = merkle_root_of_hashes(leaves)
    return merkle_root_of_hashes(roots)


class StateTree:
    """The two-tier tree over a key-value map, kept up to date as entries change.

    `update` takes a block's net changes; `root` rehashes only the buckets they touched
    and the paths above them. `root_with` gives the root the tree would have after more
    changes, without applying them (a proposer's state root for its block, a validator's
    dry run); when those exact changes are then committed, the nodes it computed are
    kept instead of being hashed a second time."""

    def __init__(self, entries: Mapping[bytes, bytes]) -> None:
        self._values: Mapping[bytes, bytes] = entries
        """The committed entries, owned by the State: read, never written, here."""
        self._keys: dict[int, list[bytes]] = {}
        """Per non-empty bucket, its keys in order."""
        for key in sorted(entries):
            self._keys.setdefault(bucket_of(key), []).append(key)
        self._leaves: dict[bytes, bytes] = {}
        """Leaf hash of each committed entry, once computed."""
        self._levels: list[dict[int, bytes]] = [{} for _ in range(BUCKET_BITS + 1)]
        """Per level (0: bucket roots, BUCKET_BITS: the root), the nodes that are not
        EMPTY[level], by index."""
        self._dirty: set[int] = set(self._keys)
        """Buckets whose root is out of date."""
        self._preview: tuple[dict[bytes, bytes | None], list[dict[int, bytes]]] | None = None
        """The last `root_with`: its changes and the nodes it computed, level by level,
        until the tree changes."""

    def update(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Record a block's changes after the State applied them (None: deleted)."""
        preview, self._preview = self._preview, None
        for key, value in changes.items():
            bucket = bucket_of(key)
            self._leaves.pop(key, None)
            keys = self._keys.setdefault(bucket, [])
            at = bisect.bisect_left(keys, key)
            found = at < len(keys) and keys[at] == key
            if value is not None and not found:
                keys.insert(at, key)
            elif value is None and found:
                del keys[at]
            if not keys:
                del self._keys[bucket]
            self._dirty.add(bucket)
        if preview is not None and preview[0] == changes and self._dirty == preview[1][0].keys():
            for level, nodes in enumerate(preview[1]):
                self._store(level, nodes)  # what root_with computed for exactly these
            self._dirty.clear()

    def root(self) -> bytes:
        if self._dirty:
            roots = {b: self._bucket_root(self._keys.get(b, ()), {}) for b in self._dirty}
            self._dirty.clear()
            for level, nodes in enumerate(self._raise(roots)):
                self._store(level, nodes)
        return self._levels[BUCKET_BITS].get(0, EMPTY[BUCKET_BITS])

    def root_with(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        """The root after `changes` (None deletes), leaving the tree as it is."""
        self.root()  # the dirty buckets are clean from here until the next update
        touched: dict[int, dict[bytes, bytes | None]] = {}
        for key, value in changes.items():
            touched.setdefault(bucket_of(key), {})[key] = value
        roots = {}
        for bucket, bucket_changes in touched.items():
            committed = self._keys.get(bucket, [])
            keys = sorted(
                {*committed, *bucket_changes}.difference(
                    k for k, v in bucket_changes.items() if v is None
                )
            )
            roots[bucket] = self._bucket_root(keys, bucket_changes)
        levels = self._raise(roots)
        self._preview = (dict(changes), levels)
        return levels[BUCKET_BITS].get(0, self._levels[BUCKET_BITS].get(0, EMPTY[BUCKET_BITS]))

    def _bucket_root(self, keys: Iterable[bytes], changes: Mapping[bytes, bytes | None]) -> bytes:
        leaves = []
        for key in keys:
            if key in changes:
                value = changes[key]
                assert value is not None, "a deleted key is not among the bucket's keys"
                leaves.append(entry_leaf(key, value))
            else:
                leaves.append(self._leaf(key))
        return merkle_root_of_hashes(leaves)

    def _leaf(self, key: bytes) -> bytes:
        cached = self._leaves.get(key)
        if cached is None:
            cached = self._leaves[key] = entry_leaf(key, self._values[key])
        return cached

    def _raise(self, changed: dict[int, bytes]) -> list[dict[int, bytes]]:
        """The nodes that change, level by level (0: the bucket roots given), when those
        bucket roots change: the paths above them rehashed over the stored tree. Stored
        by the caller (`root`), or kept aside (`root_with`)."""
        levels = [changed]
        for level in range(BUCKET_BITS):
            stored, empty = self._levels[level], EMPTY[level]
            parents = {}
            for parent in sorted({index >> 1 for index in changed}):
                left, right = 2 * parent, 2 * parent + 1
                parents[parent] = _node(
                    changed[left] if left in changed else stored.get(left, empty),
                    changed[right] if right in changed else stored.get(right, empty),
                )
            changed = parents
            levels.append(changed)
        return levels

    def _store(self, level: int, nodes: Mapping[int, bytes]) -> None:
        stored = self._levels[level]
        for index, node in nodes.items():
            if node == EMPTY[level]:
                stored.pop(index, None)
            else:
                stored[index] = node


__all__ = [
    "BUCKETS",
    "BUCKET_BITS",
    "EMPTY",
    "StateTree",
    "bucket_of",
    "entry_leaf",
    "state_root_of",
]
