"""The state's commitment: one RFC 6962 Merkle tree over 1,048,576 cells, kept in tiers
so a block rehashes what it changed and not the whole state.

Each entry falls in one of 2**20 cells, chosen by the first 20 bits of SHA-256 of its
key. A cell's root is the RFC 6962 tree hash of its entries' leaves in key order (the
empty cell's root is SHA-256 of nothing, as for any empty tree), and the state root is
the RFC 6962 tree hash of the 2**20 cell roots, taken as leaf hashes: a perfect tree 20
levels deep. Sixteen neighbouring cells make a bucket (the node at level 4, the key
hash's first 16 bits): the unit a snapshot is cut and checked in.

Where each part lives: the tier from the bucket roots up (levels 4 to 20, at most
131,071 nodes whatever the state's size) in memory; the cell roots (level 0) in the
backend, read a bucket's sixteen at a time when a block changes one of its cells,
through a bounded cache; levels 1 to 3 are rehashed from them. A change costs its
cell's entries (about n / 2**20 of them: ten at ten million entries), 4 hashes to its
bucket and 16 to the root. A node whose subtree holds only empty cells is never stored,
its hash being the same at every position of its level.
"""

from __future__ import annotations

import bisect
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from medchain.crypto import leaf_hash, merkle_root_of_hashes

CELL_BITS = 20
CELLS = 1 << CELL_BITS
BUCKET_LEVEL = 4
"""The level of the bucket roots: a bucket is 2**4 cells."""
CELLS_PER_BUCKET = 1 << BUCKET_LEVEL
BUCKET_BITS = CELL_BITS - BUCKET_LEVEL
BUCKETS = 1 << BUCKET_BITS
ROOT_LEVEL = CELL_BITS

_NODE_PREFIX = b"\x01"


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _empty_subtrees() -> tuple[bytes, ...]:
    hashes = [hashlib.sha256(b"").digest()]
    for _ in range(CELL_BITS):
        hashes.append(_node(hashes[-1], hashes[-1]))
    return tuple(hashes)


EMPTY = _empty_subtrees()
"""EMPTY[level]: the hash of a subtree of 2**level empty cells (0: one cell, 4: a bucket,
20: the empty state)."""


def cell_of(key: bytes) -> int:
    """The cell a key's entry falls in: spread evenly whatever the keys' prefixes."""
    return int.from_bytes(hashlib.sha256(key).digest()[:3], "big") >> (24 - CELL_BITS)


def bucket_of(key: bytes) -> int:
    """The bucket a key's entry falls in: the first 16 bits of SHA-256 of the key."""
    return int.from_bytes(hashlib.sha256(key).digest()[:2], "big")


def entry_leaf(key: bytes, value: bytes) -> bytes:
    """The leaf hash of one entry: length-prefixed key, then value."""
    return leaf_hash(len(key).to_bytes(4, "big") + key + value)


def bucket_root(cell_roots: Mapping[int, bytes], bucket: int) -> bytes:
    """The root of `bucket` over the roots of its cells (by cell number; a cell not
    given is empty): a perfect tree 4 levels deep."""
    first = bucket * CELLS_PER_BUCKET
    level = [cell_roots.get(cell, EMPTY[0]) for cell in range(first, first + CELLS_PER_BUCKET)]
    for height in range(BUCKET_LEVEL):
        empty, above = EMPTY[height], EMPTY[height + 1]
        pairs = zip(level[::2], level[1::2], strict=True)
        level = [above if left == right == empty else _node(left, right) for left, right in pairs]
    return level[0]


def cell_roots_of(entries: Iterable[tuple[bytes, bytes]]) -> dict[int, bytes]:
    """The root of every non-empty cell the entries fill (each key once, any order)."""
    cells: dict[int, list[tuple[bytes, bytes]]] = {}
    for key, value in entries:
        cells.setdefault(cell_of(key), []).append((key, value))
    return {
        cell: merkle_root_of_hashes([entry_leaf(k, v) for k, v in sorted(pairs)])
        for cell, pairs in sorted(cells.items())
    }


def bucket_roots_of(cell_roots: Mapping[int, bytes]) -> dict[int, bytes]:
    """The root of every bucket holding one of these cells."""
    buckets = sorted({cell >> BUCKET_LEVEL for cell in cell_roots})
    return {bucket: bucket_root(cell_roots, bucket) for bucket in buckets}


def state_root_of(entries: Mapping[bytes, bytes]) -> bytes:
    """The state root of `entries` computed from scratch, by the definition above: the
    reference the incremental `StateTree` must always equal."""
    roots = [EMPTY[BUCKET_LEVEL]] * BUCKETS
    for bucket, root in bucket_roots_of(cell_roots_of(entries.items())).items():
        roots[bucket] = root
    return merkle_root_of_hashes(roots)


def tier_of(bucket_roots: Mapping[int, bytes]) -> list[tuple[int, int, bytes]]:
    """Every node of the tier over `bucket_roots` (levels 4 to 20; a bucket not given is
    empty) that is not the empty subtree's hash, in (level, index) order: from the
    bucket roots alone (a snapshot's manifest)."""
    tree = StateTree(_no_cell_reads, _no_cell_root_reads)
    tree._set_bucket_roots(dict(bucket_roots))
    return tree.tier_nodes()


def tree_nodes_of(cell_roots: Mapping[int, bytes]) -> list[tuple[int, int, bytes]]:
    """Every node a store keeps of the tree over these cell roots: the cell roots (level
    0) that are not empty, then the tier, in (level, index) order (a store built in
    bulk, or from a snapshot)."""
    cells = [(0, cell, root) for cell, root in sorted(cell_roots.items()) if root != EMPTY[0]]
    return cells + tier_of(bucket_roots_of(cell_roots))


def _no_cell_reads(cell: int) -> list[tuple[bytes, bytes]]:
    raise AssertionError(f"a tree built from bucket roots never reads cell {cell}")


def _no_cell_root_reads(bucket: int) -> dict[int, bytes]:
    raise AssertionError(f"a tree built from bucket roots never reads bucket {bucket}")


CellReader = Callable[[int], list[tuple[bytes, bytes]]]
"""Reads one cell's committed entries in key order (the State: disk plus what its
blocks changed since)."""

CellRootReader = Callable[[int], Mapping[int, bytes]]
"""Reads the stored roots of one bucket's non-empty cells, by cell number."""

NodeKey = tuple[int, int]
"""(level, index) of a stored node: level 0 (a cell root) or 4 to 20 (the tier)."""

DEFAULT_LEAF_CACHE = 1 << 18
"""Entries whose leaf hash is cached (in whole cells): about 25 MB."""

_CELL_ROOT_CACHE = 1 << 14
"""Buckets whose cell roots are cached when the leaf cache is bounded: at most 16
hashes each, about 37 MB."""


class _Cell:
    """One cell's committed keys in order, with their leaf hashes."""

    __slots__ = ("keys", "leaves")

    def __init__(self, keys: list[bytes], leaves: list[bytes]) -> None:
        self.keys = keys
        self.leaves = leaves


_Preview = tuple[dict[bytes, bytes | None], dict[int, bytes], list[dict[int, bytes]]]
"""A `root_with`'s changes, the cell roots and the tier nodes it computed."""


class StateTree:
    """The tree over the committed entries, kept up to date as they change.

    `update` takes a block's net changes; `root` rehashes only the cells they touched
    and the paths above them, reading each touched cell's entries through `read_cell`
    unless its leaf hashes are cached, and each touched bucket's other cell roots
    through `read_cell_roots` unless cached. `root_with` gives the root the tree would
    have after more changes, without applying them (a proposer's state root for its
    block, a validator's dry run); when those exact changes are then committed, the
    nodes it computed are kept instead of being hashed a second time. Every node
    stored since the last `take_changed_nodes` is remembered, for the store to write
    with the block; cell roots stay in memory until `persisted` says the store holds
    them."""

    def __init__(
        self,
        read_cell: CellReader,
        read_cell_roots: CellRootReader,
        nodes: Iterable[tuple[int, int, bytes]] = (),
        dirty: Iterable[int] = (),
        leaf_cache: int | None = DEFAULT_LEAF_CACHE,
    ) -> None:
        """`nodes`: the stored tier (levels 4 to 20); `dirty`: cells whose root is not
        stored (every non-empty cell, for a tree built over entries in memory);
        `leaf_cache`: entries whose leaf hashes are kept (None: all, and every cell
        root: a tree in memory, whose backend stores none)."""
        self._read_cell = read_cell
        self._read_cell_roots = read_cell_roots
        self._tier: list[dict[int, bytes]] = [{} for _ in range(BUCKET_LEVEL, ROOT_LEVEL + 1)]
        """Per tier level (0: bucket roots, 16: the root), the nodes that are not
        EMPTY[BUCKET_LEVEL + level], by index."""
        for level, index, node in nodes:
            if level < BUCKET_LEVEL:
                raise ValueError(f"a stored tier node at level {level}, below the buckets")
            self._tier[level - BUCKET_LEVEL][index] = node
        self._dirty: set[int] = set(dirty)
        """Cells whose root is out of date."""
        self._cells: OrderedDict[int, _Cell] = OrderedDict()
        """Cells' keys and leaf hashes, least recently used first."""
        self._cached_entries = 0
        self._cache_limit = leaf_cache
        self._cell_roots: OrderedDict[int, dict[int, bytes]] = OrderedDict()
        """Per bucket, its non-empty cells' roots, least recently used first."""
        self._unwritten: dict[int, dict[int, bytes]] = {}
        """Per bucket, cell roots changed since `persisted` (EMPTY[0]: now empty)."""
        self._changed_cells: set[int] = set()
        self._changed: list[set[int]] = [set() for _ in self._tier]
        """Per tier level, the indexes of nodes stored since `take_changed_nodes`."""
        self._preview: _Preview | None = None
        """The last `root_with`, until the tree changes."""

    def check(self) -> None:
        """Raise ValueError unless the stored bucket roots hash up to the stored root
        (a damaged store, found at start instead of at the next block)."""
        if self._dirty:
            return
        levels = self._raise(dict(self._tier[0]), over=[{} for _ in self._tier])
        if levels != self._tier:
            raise ValueError("the stored bucket roots do not hash up to the stored state tree")

    def update(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Record a block's changes after the State applied them (None: deleted)."""
        preview, self._preview = self._preview, None
        for key, value in changes.items():
            cell = cell_of(key)
            self._dirty.add(cell)
            cached = self._cells.get(cell)
            if cached is not None:
                self._edit(cached, key, value)
        if preview is not None and preview[0] == changes and self._dirty == preview[1].keys():
            self._store_cells(preview[1])
            for level, nodes in enumerate(preview[2]):
                self._store(level, nodes)  # what root_with computed for exactly these
            self._dirty.clear()

    def _edit(self, cached: _Cell, key: bytes, value: bytes | None) -> None:
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
            roots = {c: merkle_root_of_hashes(self._cell(c).leaves) for c in sorted(self._dirty)}
            self._dirty.clear()
            self._store_cells(roots)
            self._set_bucket_roots(self._bucket_roots(roots))
        return self._tier[-1].get(0, EMPTY[ROOT_LEVEL])

    def _set_bucket_roots(self, roots: dict[int, bytes]) -> None:
        """Store these bucket roots and rehash the paths above them."""
        for level, nodes in enumerate(self._raise(roots)):
            self._store(level, nodes)

    def root_with(self, changes: Mapping[bytes, bytes | None]) -> bytes:
        """The root after `changes` (None deletes), leaving the tree as it is."""
        self.root()  # the dirty cells are clean from here until the next update
        touched: dict[int, dict[bytes, bytes | None]] = {}
        for key, value in changes.items():
            touched.setdefault(cell_of(key), {})[key] = value
        cells = {c: self._cell_root_with(self._cell(c), touched[c]) for c in sorted(touched)}
        levels = self._raise(self._bucket_roots(cells))
        self._preview = (dict(changes), cells, levels)
        return levels[-1].get(0, self._tier[-1].get(0, EMPTY[ROOT_LEVEL]))

    def take_changed_nodes(self) -> dict[NodeKey, bytes | None]:
        """The nodes stored since the last call, in (level, index) order (None: the
        node is the empty subtree's hash again), for the store; then forget them."""
        self.root()
        changed: dict[NodeKey, bytes | None] = {}
        for cell in sorted(self._changed_cells):
            changed[0, cell] = self._bucket_cells(cell >> BUCKET_LEVEL).get(cell)
        for level, indexes in enumerate(self._changed):
            for index in sorted(indexes):
                changed[BUCKET_LEVEL + level, index] = self._tier[level].get(index)
        self._changed_cells = set()
        self._changed = [set() for _ in self._tier]
        return changed

    def persisted(self) -> None:
        """The backend now holds every cell root `take_changed_nodes` gave: read them
        from it again when they are no longer cached."""
        self._unwritten.clear()

    def tier_nodes(self) -> list[tuple[int, int, bytes]]:
        """Every stored node of the tier (levels 4 to 20), in (level, index) order."""
        self.root()
        return [
            (BUCKET_LEVEL + level, index, nodes[index])
            for level, nodes in enumerate(self._tier)
            for index in sorted(nodes)
        ]

    def nodes(self) -> list[tuple[int, int, bytes]]:
        """Every node a store keeps (cell roots, then the tier), in (level, index) order:
        only for a tree that holds every cell root (one in memory, `leaf_cache` None)."""
        if self._cache_limit is not None:
            raise RuntimeError("only a tree in memory holds every cell root")
        self.root()
        roots = {c: r for cells in self._cell_roots.values() for c, r in cells.items()}
        return [(0, c, roots[c]) for c in sorted(roots)] + self.tier_nodes()

    @staticmethod
    def _cell_root_with(cached: _Cell, changes: Mapping[bytes, bytes | None]) -> bytes:
        leaves = dict(zip(cached.keys, cached.leaves, strict=True))
        for key, value in changes.items():
            if value is None:
                leaves.pop(key, None)
            else:
                leaves[key] = entry_leaf(key, value)
        return merkle_root_of_hashes([leaves[k] for k in sorted(leaves)])

    def _cell(self, cell: int) -> _Cell:
        """The cell's committed keys and leaf hashes: cached, or read and cached."""
        cached = self._cells.get(cell)
        if cached is not None:
            self._cells.move_to_end(cell)
            return cached
        entries = self._read_cell(cell)
        cached = _Cell([k for k, _ in entries], [entry_leaf(k, v) for k, v in entries])
        self._cells[cell] = cached
        self._cached_entries += len(cached.keys)
        limit = self._cache_limit
        while limit is not None and self._cached_entries > limit and len(self._cells) > 1:
            _, evicted = self._cells.popitem(last=False)
            self._cached_entries -= len(evicted.keys)
        return cached

    def _bucket_cells(self, bucket: int) -> dict[int, bytes]:
        """The bucket's non-empty cell roots, as the committed blocks left them."""
        cached = self._cell_roots.get(bucket)
        if cached is not None:
            self._cell_roots.move_to_end(bucket)
            return cached
        roots = dict(self._read_cell_roots(bucket))
        for cell, root in self._unwritten.get(bucket, {}).items():
            if root == EMPTY[0]:
                roots.pop(cell, None)
            else:
                roots[cell] = root
        self._cell_roots[bucket] = roots
        if self._cache_limit is not None and len(self._cell_roots) > _CELL_ROOT_CACHE:
            self._cell_roots.popitem(last=False)
        return roots

    def _bucket_roots(self, cells: Mapping[int, bytes]) -> dict[int, bytes]:
        """The roots of the buckets of these changed cells, the others as they are."""
        roots = {}
        for bucket in sorted({cell >> BUCKET_LEVEL for cell in cells}):
            stored = self._bucket_cells(bucket)
            first = bucket * CELLS_PER_BUCKET
            changed = {c: cells[c] for c in range(first, first + CELLS_PER_BUCKET) if c in cells}
            roots[bucket] = bucket_root({**stored, **changed}, bucket)
        return roots

    def _store_cells(self, roots: Mapping[int, bytes]) -> None:
        for cell, root in roots.items():
            bucket = cell >> BUCKET_LEVEL
            cached = self._bucket_cells(bucket)
            if root == EMPTY[0]:
                cached.pop(cell, None)
            else:
                cached[cell] = root
            if self._cache_limit is not None:  # else the cache holds every cell root
                self._unwritten.setdefault(bucket, {})[cell] = root
            self._changed_cells.add(cell)

    def _raise(
        self, changed: dict[int, bytes], over: list[dict[int, bytes]] | None = None
    ) -> list[dict[int, bytes]]:
        """The tier nodes that change, level by level (0: the bucket roots given), when
        those bucket roots change: the paths above them rehashed over the stored tier
        (or over `over`). Stored by the caller (`root`), or kept aside (`root_with`)."""
        base = self._tier if over is None else over
        levels = [changed]
        for level in range(len(self._tier) - 1):
            stored, empty = base[level], EMPTY[BUCKET_LEVEL + level]
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
        stored, empty = self._tier[level], EMPTY[BUCKET_LEVEL + level]
        for index, node in nodes.items():
            if node == empty:
                stored.pop(index, None)
            else:
                stored[index] = node
        self._changed[level].update(nodes)


__all__ = [
    "BUCKETS",
    "BUCKET_BITS",
    "BUCKET_LEVEL",
    "CELLS",
    "CELL_BITS",
    "DEFAULT_LEAF_CACHE",
    "EMPTY",
    "ROOT_LEVEL",
    "CellReader",
    "CellRootReader",
    "NodeKey",
    "StateTree",
    "bucket_of",
    "bucket_root",
    "bucket_roots_of",
    "cell_of",
    "cell_roots_of",
    "entry_leaf",
    "state_root_of",
    "tier_of",
    "tree_nodes_of",
]
