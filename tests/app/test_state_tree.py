"""The state's commitment: the incremental tree always equals the definition computed
from scratch, a change rehashes its cell and the 20 nodes above it only, whatever the
tree kept in its caches, and known answers pin the definition (a change to it is a
change of consensus)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import MemoryBackend, State
from medchain.app import _state_tree as tree_module
from medchain.app._state_tree import (
    BUCKET_LEVEL,
    BUCKETS,
    EMPTY,
    ROOT_LEVEL,
    StateTree,
    bucket_of,
    bucket_roots_of,
    cell_of,
    cell_roots_of,
    entry_leaf,
    state_root_of,
    tier_of,
    tree_nodes_of,
)
from medchain.crypto import leaf_hash, merkle_root_of_hashes

keys = st.binary(min_size=1, max_size=6)
values = st.binary(max_size=8)
blocks = st.lists(st.dictionaries(keys, st.none() | values, max_size=12), max_size=4)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _cell_reader(entries: dict[bytes, bytes]) -> Callable[[int], list[tuple[bytes, bytes]]]:
    """Reads a cell of `entries` as they are at the time (the tests edit them as a store
    would), through `tree_module.cell_of` (a test may patch it)."""

    def read(cell: int) -> list[tuple[bytes, bytes]]:
        return sorted((k, v) for k, v in entries.items() if tree_module.cell_of(k) == cell)

    return read


def _tree_over(entries: dict[bytes, bytes]) -> StateTree:
    """A tree in memory: every cell root computed from the entries, none stored."""
    dirty = {tree_module.cell_of(k) for k in entries}
    return StateTree(_cell_reader(entries), lambda bucket: {}, dirty=dirty, leaf_cache=None)


class _Stored:
    """What a store keeps: the entries and the tree's nodes, written after each block."""

    def __init__(self, entries: dict[bytes, bytes]) -> None:
        self.entries = entries
        self.nodes = {(level, index): node for level, index, node in _tree_over(entries).nodes()}

    def tree(self, leaf_cache: int) -> StateTree:
        """A tree opened on what is stored, as a node opens its store."""
        tier = [(lv, i, n) for (lv, i), n in sorted(self.nodes.items()) if lv >= BUCKET_LEVEL]
        return StateTree(_cell_reader(self.entries), self.cell_roots, tier, leaf_cache=leaf_cache)

    def cell_roots(self, bucket: int) -> dict[int, bytes]:
        first = bucket << BUCKET_LEVEL
        return {c: self.nodes[0, c] for c in range(first, first + 16) if (0, c) in self.nodes}

    def write(self, changes: dict[bytes, bytes | None], tree: StateTree) -> None:
        for key, value in changes.items():
            if value is None:
                self.entries.pop(key, None)
            else:
                self.entries[key] = value
        for at, node in tree.take_changed_nodes().items():
            if node is None:
                self.nodes.pop(at, None)
            else:
                self.nodes[at] = node


def test_the_empty_state_is_the_tree_of_empty_cells() -> None:
    assert EMPTY[0] == _sha(b"")  # RFC 6962: the hash of an empty tree
    assert EMPTY[1] == _sha(b"\x01" + _sha(b"") + _sha(b""))
    assert EMPTY[BUCKET_LEVEL] == merkle_root_of_hashes([_sha(b"")] * 16)
    assert _tree_over({}).root() == state_root_of({}) == EMPTY[ROOT_LEVEL]
    assert EMPTY[ROOT_LEVEL] == merkle_root_of_hashes([EMPTY[BUCKET_LEVEL]] * BUCKETS)


def test_one_entry_by_hand() -> None:
    key, value = b"acct/alice", b"\x01\x02"
    leaf = leaf_hash(len(key).to_bytes(4, "big") + key + value)
    assert entry_leaf(key, value) == leaf
    cell = int.from_bytes(_sha(key)[:3], "big") >> 4
    assert cell_of(key) == cell and bucket_of(key) == cell >> 4
    node = leaf  # a cell of one entry has that entry's leaf as its root
    for level in range(ROOT_LEVEL):
        sibling = EMPTY[level]
        bit = (cell >> level) & 1
        node = _sha(b"\x01" + (sibling + node if bit else node + sibling))
    assert _tree_over({key: value}).root() == node == state_root_of({key: value})


def test_entries_sharing_a_cell_are_in_key_order() -> None:
    first, second = b"k712", b"k930"  # both in cell 225459, bucket 14091
    assert cell_of(first) == cell_of(second) == 225459
    entries = {second: b"2", first: b"1"}
    cell_root = _sha(b"\x01" + entry_leaf(first, b"1") + entry_leaf(second, b"2"))
    cells = [EMPTY[0]] * 16
    cells[225459 % 16] = cell_root
    buckets = [EMPTY[BUCKET_LEVEL]] * BUCKETS
    buckets[14091] = merkle_root_of_hashes(cells)
    assert _tree_over(entries).root() == merkle_root_of_hashes(buckets)


def test_known_answers() -> None:
    """Pinned: every node must compute these, so they may change only on purpose."""
    assert (
        state_root_of({b"a": b"1"}).hex()
        == "70e9f9f98089dae4aede87154401a23757c552aa63e7b86723da15ee2a91c67f"
    )
    assert (
        state_root_of({b"a": b"1", b"b": b"2", b"c": b"3"}).hex()
        == "91ffdc6a55894bb8a3e0d8b62c4d7227203b2d46f6d7df88d18fd137a422f3ac"
    )


def _crowded(key: bytes) -> int:
    """Three cells, two of them in one bucket: cells of many entries, and entries
    leaving and joining them."""
    return (0, 1, 17)[bucket_of(key) % 3]


@pytest.mark.parametrize("leaf_cache", [None, 0, 5])
@pytest.mark.parametrize("crowded", [False, True])
@settings(max_examples=15, deadline=None)
@given(start=st.dictionaries(keys, values, max_size=20), changes=blocks)
def test_incremental_roots_equal_the_definition(
    crowded: bool,
    leaf_cache: int | None,
    start: dict[bytes, bytes],
    changes: list[dict[bytes, bytes | None]],
) -> None:
    """In memory (`leaf_cache` None), or over stored nodes with small caches, so the
    tree reads evicted cells and cell roots again, and reopens after each block."""
    with (
        mock.patch.object(tree_module, "cell_of", _crowded if crowded else cell_of),
        mock.patch.object(tree_module, "_CELL_ROOT_CACHE", 1),
    ):
        if leaf_cache is None:
            _check_in_memory(start, changes)
        else:
            _check_stored(start, changes, leaf_cache)


def _apply(entries: dict[bytes, bytes], block: dict[bytes, bytes | None]) -> None:
    for key, value in block.items():
        if value is None:
            entries.pop(key, None)
        else:
            entries[key] = value


def _check_in_memory(start: dict[bytes, bytes], changes: list[dict[bytes, bytes | None]]) -> None:
    entries = dict(start)
    tree = _tree_over(entries)
    assert tree.root() == state_root_of(entries)
    others = [*changes[1:], {}][: len(changes)]
    for block, other in zip(changes, others, strict=True):
        ahead = tree.root_with(block)
        if len(block) % 2:  # a dry run of other changes before this block's are applied
            tree.root_with(other)
        _apply(entries, block)
        tree.update(block)
        assert ahead == tree.root() == state_root_of(entries)
        assert tree.nodes() == tree_nodes_of(cell_roots_of(entries.items()))


def _check_stored(
    start: dict[bytes, bytes], changes: list[dict[bytes, bytes | None]], leaf_cache: int
) -> None:
    stored = _Stored(dict(start))
    tree = stored.tree(leaf_cache)
    tree.check()
    assert tree.root() == state_root_of(stored.entries)
    for number, block in enumerate(changes):
        ahead = tree.root_with(block)
        tree.update(block)
        assert ahead == tree.root()
        if number % 2:  # a later block before this one is written: roots stay in memory
            follow: dict[bytes, bytes | None] = {b"follow": bytes([number])}
            tree.update(follow)
            block = {**block, **follow}
        stored.write(block, tree)
        tree.persisted()
        assert tree.root() == state_root_of(stored.entries)
        tree = stored.tree(leaf_cache) if number % 3 == 2 else tree  # a restart
        assert tree.root() == state_root_of(stored.entries)
    assert stored.nodes == dict(
        ((lv, i), n) for lv, i, n in tree_nodes_of(cell_roots_of(stored.entries.items()))
    )


HashTwo = Callable[[bytes, bytes], bytes]


def _counted(calls: list[int], hash_two: HashTwo) -> HashTwo:
    """`hash_two`, noting each call in `calls`."""

    def counting(a: bytes, b: bytes) -> bytes:
        calls.append(1)
        return hash_two(a, b)

    return counting


@settings(max_examples=30, deadline=None)
@given(entries=st.dictionaries(keys, values, max_size=30))
def test_the_stored_nodes_from_cell_or_bucket_roots_are_the_trees_own(
    entries: dict[bytes, bytes],
) -> None:
    """What a store keeps for a state built in bulk or from a snapshot, computed from
    the cell roots (or the tier from the bucket roots alone), is exactly what a tree
    over the entries holds."""
    expected = _tree_over(entries).nodes()
    cells = {index: node for level, index, node in expected if level == 0}
    assert tree_nodes_of(cells) == expected
    assert tree_nodes_of({**cells, 7: EMPTY[0]}) == expected  # an empty cell is no node
    tier = [node for node in expected if node[0] >= BUCKET_LEVEL]
    assert tier_of(bucket_roots_of(cells)) == tier
    stored_root = [node for level, _, node in expected if level == ROOT_LEVEL]
    assert stored_root == ([state_root_of(entries)] if entries else [])


def test_a_change_rehashes_its_cell_and_its_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = {i.to_bytes(4, "big"): b"v" for i in range(200_000)}
    backend = MemoryBackend(entries)
    tree = StateTree(
        backend.cell_entries, backend.cell_roots, dirty=backend.cells(), leaf_cache=None
    )
    tree.root()
    key = b"new entry"
    cell_size = sum(1 for k in entries if cell_of(k) == cell_of(key))
    nodes: list[int] = []
    leaves: list[int] = []
    node, leaf = tree_module._node, tree_module.entry_leaf
    monkeypatch.setattr(tree_module, "_node", _counted(nodes, node))
    monkeypatch.setattr(tree_module, "entry_leaf", _counted(leaves, leaf))
    backend.apply({key: b"w"})
    tree.update({key: b"w"})
    tree.root()
    # the path from its cell to its bucket (and pairs of its bucket's other cells not
    # both empty: at most 15 in all), then the 16 levels above
    assert ROOT_LEVEL <= len(nodes) <= 15 + ROOT_LEVEL - BUCKET_LEVEL
    assert len(leaves) == 1  # the new entry's leaf; the cell's others are cached
    assert cell_size < 5  # about 200,000 / 2**20 entries share the cell
    # a block whose root was computed ahead (proposer, dry run) is not hashed again
    nodes.clear()
    block: dict[bytes, bytes | None] = {b"another": b"x", key: None}
    assert bucket_of(b"another") != bucket_of(key)
    ahead = tree.root_with(block)
    assert 2 * ROOT_LEVEL - 16 < len(nodes) <= 2 * 15 + 32  # two paths sharing their top
    nodes.clear()
    backend.apply(block)
    tree.update(block)
    assert tree.root() == ahead and nodes == []


def test_a_state_commits_the_root_its_block_previewed(monkeypatch: pytest.MonkeyPatch) -> None:
    state = State({b"a": b"1", b"b": b"2"})
    state.root()
    state.begin_block()
    state.set(b"c", b"3")
    state.set(b"a", b"1")  # a write of the same value changes nothing
    ahead = state.pending_root()
    expected = state_root_of({b"a": b"1", b"b": b"2", b"c": b"3"})
    nodes: list[int] = []
    monkeypatch.setattr(tree_module, "_node", _counted(nodes, tree_module._node))
    state.end_block()
    assert state.root() == ahead == expected
    assert nodes == []


def test_a_tier_node_below_the_buckets_is_refused() -> None:
    with pytest.raises(ValueError, match="below the buckets"):
        StateTree(_cell_reader({}), lambda bucket: {}, [(0, 1, EMPTY[1])])
