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
never stored, its hash being the same at every position of its level. It is at most
2 * 65,536 - 1 nodes whatever the state's size, so it is kept whole in memory (and on
disk, with each block); a bucket's entries are read from the state only when a block
changes the bucket, through a bounded cache of buckets' leaf hashes.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

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


def upper_tier(bucket_roots: Mapping[int, bytes]) -> list[tuple[int, int, bytes]]:
    """Every node of the upper tree over `bucket_roots` (a bucket not given is empty)
    that is not the empty subtree's hash, in (level, index) order: the tier a store
    keeps, from the bucket roots alone (a migrated store, a snapshot's manifest)."""
    tree = StateTree(_no_bucket_reads)
    tree._set_bucket_roots(dict(bucket_roots))
    return tree.nodes()


def _no_bucket_reads(bucket: int) -> list[tuple[bytes, bytes]]:
    raise AssertionError(f"a tree built from bucket roots never reads bucket {bucket}")


BucketReader = Callable[[int], list[tuple[bytes, bytes]]]
"""Reads one bucket's committed entries in key order (the State: disk plus what its
blocks changed since)."""

NodeKey = tuple[int, int]
"""(level, index) of a node of the upper tree."""

DEFAULT_LEAF_CACHE = 1 << 18
"""Entries whose leaf hash is cached (in whole buckets): about 25 MB."""


class _Bucket:
    """One bucket's committed keys in order, with their leaf hashes."""

    __slots__ = ("keys", "leaves")

    def __init__(self, keys: list[bytes], leaves: list[bytes]) -> None:
        self.keys = keys
        self.leaves = leaves


class StateTree:
    """The two-tier tree over the committed entries, kept up to date as they change.

    `update` takes a block's net changes; `root` rehashes only the buckets they touched
    and the paths above them, reading each touched bucket's entries through
    `read_bucket` unless its leaf hashes are cached. `root_with` gives the root the
    tree would have after more changes, without applying them (a proposer's state root
    for its block, a validator's dry run); when those exact changes are then
    committed, the nodes it computed are kept instead of being hashed a second time.
    Every node stored since the last `take_changed_nodes` is remembered, for the store
    to write with the block."""

    def __init__(
        self,
        read_bucket: BucketReader,
        nodes: Iterable[tuple[int, int, bytes]] = (),
        dirty: Iterable[int] = (),
        leaf_cache: int | None = DEFAULT_LEAF_CACHE,
    ) -> None:
        """`nodes`: the stored upper tree; `dirty`: buckets whose root is not among
        them (every non-empty bucket, for a tree built over entries in memory);
        `leaf_cache`: entries whose leaf hashes are kept (None: all)."""
        self._read_bucket = read_bucket
        self._levels: list[dict[int, bytes]] = [{} for _ in range(BUCKET_BITS + 1)]
        """Per level (0: bucket roots, BUCKET_BITS: the root), the nodes that are not
        EMPTY[level], by index."""
        for level, index, node in nodes:
            self._levels[level][index] = node
        self._dirty: set[int] = set(dirty)
        """Buckets whose root is out of date."""
        self._cache: OrderedDict[int, _Bucket] = OrderedDict()
        """Buckets' keys and leaf hashes, least recently used first."""
        self._cached_entries = 0
        self._cache_limit = leaf_cache
        self._changed: list[set[int]] = [set() for _ in range(BUCKET_BITS + 1)]
        """Per level, the indexes of nodes stored since `take_changed_nodes`."""
        self._preview: tuple[dict[bytes, bytes | None], list[dict[int, bytes]]] | None = None
        """The last `root_with`: its changes and the nodes it computed, level by level,
        until the tree changes."""

    def check(self) -> None:
        """Raise ValueError unless the stored bucket roots hash up to the stored root
        (a damaged store, found at start instead of at the next block)."""
        if self._dirty:
            return
        levels = self._raise(dict(self._levels[0]), over=[{} for _ in self._levels])
        if levels != self._levels:
            raise ValueError("the stored bucket roots do not hash up to the stored state tree")

    def update(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Record a block's changes after the State applied them (None: deleted)."""
        preview, self._preview = self._preview, None
        for key, value in changes.items():
            bucket = bucket_of(key)
            self._dirty.add(bucket)
            cached = self._cache.get(bucket)
            if cached is not None:
                self._edit(cached, key, value)
        if preview is not None and preview[0] == changes and self._dirty == preview[1][0].keys():
            for level, nodes in enumerate(preview[1]):
                self._store(level, nodes)  # what root_with computed for exactly these
            self._dirty.clear()

    def _edit(self, cached: _Bucket, key: bytes, value: bytes | None) -> None:
        keys, leaves = cached.keys, cached.leaves
        at = bisect.bisect_left(keys, key)
        found = at < len(keys) and keys[at] == key
        if value is None:
            if found:
                del keys[at], leaves[at]
                self._cached_entries -= 1
        elif found:
            leaves[at] = entry_leaf(key, value)
        else:
            keys.insert(at, key)
            leaves.insert(at, entry_leaf(key, value))
            self._cached_entries += 1

    def root(self) -> bytes:
        if self._dirty:
            roots = {b: merkle_root_of_hashes(self._bucket(b).leaves) for b in sorted(self._dirty)}
            self._dirty.clear()
            self._set_bucket_roots(roots)
        return self._levels[BUCKET_BITS].get(0, EMPTY[BUCKET_BITS])

    def _set_bucket_roots(self, roots: dict[int, bytes]) -> None:
        """Store these bucket roots and rehash the paths above them."""
        for level, nodes in enumerate(self._raise(roots)):
            self._store(level, nodes)

    def root_with(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        """The root after `changes` (None deletes), leaving the tree as it is."""
        self.root()  # the dirty buckets are clean from here until the next update
        touched: dict[int, dict[bytes, bytes | None]] = {}
        for key, value in changes.items():
            touched.setdefault(bucket_of(key), {})[key] = value
        roots = {}
        for bucket in sorted(touched):
            roots[bucket] = self._bucket_root_with(self._bucket(bucket), touched[bucket])
        levels = self._raise(roots)
        self._preview = (dict(changes), levels)
        return levels[BUCKET_BITS].get(0, self._levels[BUCKET_BITS].get(0, EMPTY[BUCKET_BITS]))

    def take_changed_nodes(self) -> dict[NodeKey, bytes | None]:
        """The nodes stored since the last call, in (level, index) order (None: the
        node is the empty subtree's hash again), for the store; then forget them."""
        self.root()
        changed = {
            (level, index): self._levels[level].get(index)
            for level, indexes in enumerate(self._changed)
            for index in sorted(indexes)
        }
        self._changed = [set() for _ in range(BUCKET_BITS + 1)]
        return changed

    def nodes(self) -> list[tuple[int, int, bytes]]:
        """Every stored node, in (level, index) order: the whole upper tree."""
        self.root()
        return [(lv, i, nodes[i]) for lv, nodes in enumerate(self._levels) for i in sorted(nodes)]

    @staticmethod
    def _bucket_root_with(cached: _Bucket, changes: Mapping[bytes, bytes | None]) -> bytes:
        leaves = dict(zip(cached.keys, cached.leaves, strict=True))
        for key, value in changes.items():
            if value is None:
                leaves.pop(key, None)
            else:
                leaves[key] = entry_leaf(key, value)
        return merkle_root_of_hashes([leaves[k] for k in sorted(leaves)])

    def _bucket(self, bucket: int) -> _Bucket:
        """The bucket's committed keys and leaf hashes: cached, or read and cached."""
        cached = self._cache.get(bucket)
        if cached is not None:
            self._cache.move_to_end(bucket)
            return cached
        entries = self._read_bucket(bucket)
        cached = _Bucket([k for k, _ in entries], [entry_leaf(k, v) for k, v in entries])
        self._cache[bucket] = cached
        self._cached_entries += len(cached.keys)
        limit = self._cache_limit
        while limit is not None and self._cached_entries > limit and len(self._cache) > 1:
            _, evicted = self._cache.popitem(last=False)
            self._cached_entries -= len(evicted.keys)
        return cached

    def _raise(
        self, changed: dict[int, bytes], over: list[dict[int, bytes]] | None = None
    ) -> list[dict[int, bytes]]:
        """The nodes that change, level by level (0: the bucket roots given), when those
        bucket roots change: the paths above them rehashed over the stored tree (or
        over `over`). Stored by the caller (`root`), or kept aside (`root_with`)."""
        base = self._levels if over is None else over
        levels = [changed]
        for level in range(BUCKET_BITS):
            stored, empty = base[level], EMPTY[level]
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
        stored, empty = self._levels[level], EMPTY[level]
        for index, node in nodes.items():
            if node == empty:
                stored.pop(index, None)
            else:
                stored[index] = node
        self._changed[level].update(nodes)


__all__ = [
    "BUCKETS",
    "BUCKET_BITS",
    "DEFAULT_LEAF_CACHE",
    "EMPTY",
    "BucketReader",
    "NodeKey",
    "StateTree",
    "bucket_of",
    "entry_leaf",
    "state_root_of",
    "upper_tier",
]
