"""The in-memory state as medchain kept it before the state moved to disk: every
entry in a dict and every key and leaf hash of the tree in memory.

Kept as the reference the on-disk `State` must always agree with (same values, same
roots, block after block); tests only, never the node. Its bucket roots are computed
from each bucket's entries by the commitment's definition (cells of the bucket, then
four levels up), where the node stores cell roots."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager

from medchain.app import STATE_BUCKET_BITS as BUCKET_BITS
from medchain.app import STATE_BUCKET_LEVEL, STATE_EMPTY_SUBTREES
from medchain.app import state_bucket_of as bucket_of
from medchain.app import state_cell_of as cell_of
from medchain.app import state_entry_leaf as entry_leaf
from medchain.crypto import merkle_root_of_hashes

EMPTY = STATE_EMPTY_SUBTREES[STATE_BUCKET_LEVEL:]
"""EMPTY[level]: the hash of 2**level empty buckets."""


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


_DELETED = None


class ReferenceTree:
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
        cells: dict[int, list[bytes]] = {}
        for key in keys:  # in key order
            if key in changes:
                value = changes[key]
                assert value is not None, "a deleted key is not among the bucket's keys"
                leaf = entry_leaf(key, value)
            else:
                leaf = self._leaf(key)
            cells.setdefault(cell_of(key) % (1 << STATE_BUCKET_LEVEL), []).append(leaf)
        level = [merkle_root_of_hashes(cells.get(n, [])) for n in range(1 << STATE_BUCKET_LEVEL)]
        while len(level) > 1:
            level = [_node(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        return level[0]

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


class ReferenceState:
    def __init__(self, committed: Mapping[bytes, bytes] | None = None) -> None:
        self._committed: dict[bytes, bytes] = dict(committed or {})
        self._layers: list[dict[bytes, bytes | None]] = []
        self._tree = ReferenceTree(self._committed)
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

    def copy(self) -> ReferenceState:
        if self._layers:
            raise RuntimeError("copy the state only between blocks")
        return ReferenceState(self._committed)
