"""The state's two-tier commitment: the incremental tree always equals the definition
computed from scratch, a change rehashes its bucket and the 16 nodes above it only, and
known answers pin the definition (a change to it is a change of consensus)."""

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
    BUCKET_BITS,
    BUCKETS,
    EMPTY,
    StateTree,
    bucket_of,
    entry_leaf,
    state_root_of,
    upper_tier,
)
from medchain.crypto import leaf_hash, merkle_root_of_hashes

keys = st.binary(min_size=1, max_size=6)
values = st.binary(max_size=8)
blocks = st.lists(st.dictionaries(keys, st.none() | values, max_size=12), max_size=4)


def _sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _tree_over(entries: dict[bytes, bytes], leaf_cache: int | None = None) -> StateTree:
    """A tree whose bucket reads see `entries` as they are at the time (the tests
    edit them as a store would), through `tree_module.bucket_of` (a test may patch it)."""

    def read(bucket: int) -> list[tuple[bytes, bytes]]:
        return sorted((k, v) for k, v in entries.items() if tree_module.bucket_of(k) == bucket)

    dirty = {tree_module.bucket_of(k) for k in entries}
    return StateTree(read, dirty=dirty, leaf_cache=leaf_cache)


def test_the_empty_state_is_the_tree_of_empty_buckets() -> None:
    assert EMPTY[0] == _sha(b"")  # RFC 6962: the hash of an empty tree
    assert EMPTY[1] == _sha(b"\x01" + _sha(b"") + _sha(b""))
    assert _tree_over({}).root() == state_root_of({}) == EMPTY[BUCKET_BITS]
    assert EMPTY[BUCKET_BITS] == merkle_root_of_hashes([_sha(b"")] * BUCKETS)


def test_one_entry_by_hand() -> None:
    key, value = b"acct/alice", b"\x01\x02"
    leaf = leaf_hash(len(key).to_bytes(4, "big") + key + value)
    assert entry_leaf(key, value) == leaf
    bucket = int.from_bytes(_sha(key)[:2], "big")
    assert bucket_of(key) == bucket
    node = leaf  # a bucket of one entry has that entry's leaf as its root
    for level in range(BUCKET_BITS):
        sibling = EMPTY[level]
        bit = (bucket >> level) & 1
        node = _sha(b"\x01" + (sibling + node if bit else node + sibling))
    assert _tree_over({key: value}).root() == node == state_root_of({key: value})


def test_entries_sharing_a_bucket_are_in_key_order() -> None:
    first, second = b"k202", b"k219"  # both in bucket 16018
    assert bucket_of(first) == bucket_of(second) == 16018
    entries = {second: b"2", first: b"1"}
    bucket_root = _sha(b"\x01" + entry_leaf(first, b"1") + entry_leaf(second, b"2"))
    roots = [EMPTY[0]] * BUCKETS
    roots[16018] = bucket_root
    assert _tree_over(entries).root() == merkle_root_of_hashes(roots)


def test_known_answers() -> None:
    """Pinned: every node must compute these, so they may change only on purpose."""
    assert (
        state_root_of({b"a": b"1"}).hex()
        == "6193212d8f2422930bde6f1c32c2f1fb436ee497a1ce029034280d8806627de4"
    )
    assert (
        state_root_of({b"a": b"1", b"b": b"2", b"c": b"3"}).hex()
        == "e3428d7fb4de1beb51932d40f11c68d085faa7f1abe5f84fe15d120f4cd2fe9e"
    )


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
    """`crowded` puts every entry in one of 3 buckets, so buckets of many entries, and
    entries leaving and joining them, are exercised too; a small `leaf_cache` makes
    the tree read evicted buckets again."""
    spread = bucket_of
    with mock.patch.object(
        tree_module, "bucket_of", (lambda k: spread(k) % 3) if crowded else spread
    ):
        _check_incremental(start, changes, leaf_cache)


def _check_incremental(
    start: dict[bytes, bytes], changes: list[dict[bytes, bytes | None]], leaf_cache: int | None
) -> None:
    entries = dict(start)
    tree = _tree_over(entries, leaf_cache)
    assert tree.root() == state_root_of(entries)
    others = [*changes[1:], {}][: len(changes)]
    for block, other in zip(changes, others, strict=True):
        ahead = tree.root_with(block)
        if len(block) % 2:  # a dry run of other changes before this block's are applied
            tree.root_with(other)
        for key, value in block.items():
            if value is None:
                entries.pop(key, None)
            else:
                entries[key] = value
        tree.update(block)
        assert ahead == tree.root() == state_root_of(entries)


HashTwo = Callable[[bytes, bytes], bytes]


def _counted(calls: list[int], hash_two: HashTwo) -> HashTwo:
    """`hash_two`, noting each call in `calls`."""

    def counting(a: bytes, b: bytes) -> bytes:
        calls.append(1)
        return hash_two(a, b)

    return counting


@settings(max_examples=30, deadline=None)
@given(entries=st.dictionaries(keys, values, max_size=30))
def test_the_upper_tier_from_bucket_roots_is_the_trees_own(entries: dict[bytes, bytes]) -> None:
    """What a store keeps for a migrated state or a snapshot, computed from the bucket
    roots alone, is exactly the upper tier a tree over the entries holds."""
    tree = _tree_over(entries)
    expected = tree.nodes()
    roots = {index: node for level, index, node in expected if level == 0}
    assert upper_tier(roots) == expected
    assert upper_tier({**roots, 7: EMPTY[0]}) == expected  # an empty bucket is no node
    stored_root = [node for level, _, node in expected if level == BUCKET_BITS]
    assert stored_root == ([state_root_of(entries)] if entries else [])


def test_a_change_rehashes_its_bucket_and_its_path_only(monkeypatch: pytest.MonkeyPatch) -> None:
    entries = {i.to_bytes(4, "big"): b"v" for i in range(200_000)}
    backend = MemoryBackend(entries)
    tree = StateTree(backend.bucket_entries, dirty=backend.buckets(), leaf_cache=None)
    tree.root()
    key = b"new entry"
    bucket_size = sum(1 for k in entries if bucket_of(k) == bucket_of(key))
    nodes: list[int] = []
    leaves: list[int] = []
    node, leaf = tree_module._node, tree_module.entry_leaf
    monkeypatch.setattr(tree_module, "_node", _counted(nodes, node))
    monkeypatch.setattr(tree_module, "entry_leaf", _counted(leaves, leaf))
    entries[key] = b"w"
    backend.apply({key: b"w"})
    tree.update({key: b"w"})
    tree.root()
    assert len(nodes) == BUCKET_BITS  # the path above the bucket
    assert len(leaves) == 1  # the new entry's leaf; the bucket's others are cached
    assert bucket_size < 20  # about 200,000 / 65,536 entries share the bucket
    # a block whose root was computed ahead (proposer, dry run) is not hashed again
    nodes.clear()
    block: dict[bytes, bytes | None] = {b"another": b"x", key: None}
    ahead = tree.root_with(block)
    assert BUCKET_BITS < len(nodes) <= 2 * BUCKET_BITS  # two paths, sharing their top
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
    nodes: list[int] = []
    monkeypatch.setattr(tree_module, "_node", _counted(nodes, tree_module._node))
    state.end_block()
    assert state.root() == ahead == state_root_of({b"a": b"1", b"b": b"2", b"c": b"3"})
    assert nodes == []
