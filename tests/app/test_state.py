"""The state: layered writes that vanish on error, and a root that depends only on content."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import STATE_BUCKET_LEVEL, MemoryBackend, State, StateDelta
from tests.app.reference_state import ReferenceState

entries = st.dictionaries(st.binary(min_size=1, max_size=8), st.binary(max_size=8), max_size=30)


def test_failed_layer_leaves_no_trace() -> None:
    state = State({b"a": b"1"})
    state.begin_block()
    with pytest.raises(ZeroDivisionError), state.layer():
        state.set(b"a", b"2")
        state.set(b"b", b"3")
        _ = 1 / 0
    assert state.get(b"a") == b"1" and state.get(b"b") is None
    with state.layer():
        state.delete(b"a")
        state.set(b"c", b"4")
    assert state.end_block() == {b"a": None, b"c": b"4"}
    assert state.committed() == {b"c": b"4"}


def test_writes_outside_a_block_are_refused() -> None:
    with pytest.raises(RuntimeError):
        State().set(b"k", b"v")


@given(entries)
def test_root_is_independent_of_insertion_order(data: dict[bytes, bytes]) -> None:
    forward, backward = State(), State()
    for state, keys in ((forward, sorted(data)), (backward, sorted(data, reverse=True))):
        state.begin_block()
        for key in keys:
            state.set(key, data[key])
        state.end_block()
    assert forward.root() == backward.root() == State(data).root()


@given(entries, st.binary(min_size=1, max_size=8), st.binary(max_size=8))
def test_root_changes_with_any_value(data: dict[bytes, bytes], key: bytes, value: bytes) -> None:
    before = State(data)
    after = State({**data, key: value})
    assert (before.root() == after.root()) == (data.get(key) == value)


def test_key_value_boundary_is_unambiguous() -> None:
    assert State({b"ab": b"c"}).root() != State({b"a": b"bc"}).root()


_ops = st.lists(
    st.lists(
        st.tuples(st.binary(min_size=1, max_size=3), st.one_of(st.none(), st.binary(max_size=4))),
        max_size=12,
    ),
    max_size=6,
)


@given(entries, _ops)
def test_cached_roots_equal_a_root_computed_from_scratch(
    data: dict[bytes, bytes], blocks: list[list[tuple[bytes, bytes | None]]]
) -> None:
    """Roots reuse the leaf hashes of entries a block did not touch; after any blocks
    of writes and deletes, pending and committed roots equal a fresh state's."""
    state = State(data)
    state.root()  # fill the cache
    for writes in blocks:
        state.begin_block()
        for key, value in writes:
            if value is None:
                state.delete(key)
            else:
                state.set(key, value)
        pending = state.pending_root()
        state.end_block()
        assert pending == state.root() == State(state.committed()).root()


def test_a_block_that_changes_nothing_keeps_the_root() -> None:
    state = State({b"a": b"1", b"b": b"2"})
    before = state.root()
    state.begin_block()
    state.set(b"a", b"1")  # rewrites a value unchanged
    assert state.pending_root() == before
    state.set(b"c", b"3")
    assert state.pending_root() != before
    state.end_block()
    assert state.root() == State({b"a": b"1", b"b": b"2", b"c": b"3"}).root()


class _PersistingBackend:
    """A backend that, like the node's store, keeps the tree's nodes it is given with
    the entries, so a state reopened on it reads its tree instead of hashing it."""

    def __init__(self) -> None:
        self.memory = MemoryBackend()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.get = self.memory.get
        self.cell_entries = self.memory.cell_entries
        self.entries = self.memory.entries

    def cell_roots(self, bucket: int) -> dict[int, bytes]:
        first = bucket << STATE_BUCKET_LEVEL
        return {c: self.nodes[0, c] for c in range(first, first + 16) if (0, c) in self.nodes}

    def tree_nodes(self) -> list[tuple[int, int, bytes]]:
        return [
            (level, index, node)
            for (level, index), node in sorted(self.nodes.items())
            if level >= STATE_BUCKET_LEVEL
        ]

    def write(self, delta: StateDelta) -> None:
        self.memory.apply(delta.changes)
        for position, node in delta.nodes.items():
            if node is None:
                self.nodes.pop(position, None)
            else:
                self.nodes[position] = node


_blocks = st.lists(
    st.dictionaries(st.binary(min_size=1, max_size=3), st.none() | st.binary(max_size=4)),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(_blocks, st.sampled_from([0, 1, 4, None]), st.lists(st.booleans(), min_size=8))
def test_a_persisted_state_equals_the_in_memory_reference(
    blocks: list[dict[bytes, bytes | None]], leaf_cache: int | None, persist: list[bool]
) -> None:
    """Block after block, a state whose committed entries live in a backend (persisted
    after some blocks, reopened from the backend after others, its leaf cache smaller
    than the state) has the reference's values and roots."""
    backend = _PersistingBackend()
    state, reference = State(backend, leaf_cache=leaf_cache), ReferenceState()
    for number, writes in enumerate(blocks):
        for target in (state, reference):
            target.begin_block()
            for key, value in writes.items():
                if value is None:
                    target.delete(key)
                else:
                    target.set(key, value)
        assert state.pending_root() == reference.pending_root()
        assert state.end_block() == reference.end_block()
        assert state.root() == reference.root()
        if persist[number]:
            backend.write(state.unpersisted())
            state.persisted()
            if number % 2:  # a restart: only what the backend holds survives
                state = State(backend, leaf_cache=leaf_cache)
                state.check_tree()
        assert state.root() == reference.root()
        assert state.committed() == reference.committed()
        for key in writes:
            assert state.get(key) == reference.get(key)


def test_unpersisted_gives_the_net_changes_and_the_changed_nodes_once() -> None:
    backend = _PersistingBackend()
    state = State(backend)
    state.begin_block()
    state.set(b"a", b"1")
    state.set(b"b", b"2")
    state.end_block()
    state.begin_block()
    state.delete(b"b")
    state.end_block()
    delta = state.unpersisted()
    assert delta.changes == {b"a": b"1", b"b": None}
    kept = {position for position, node in delta.nodes.items() if node is not None}
    assert len(kept) == 18  # a's cell root, its bucket root and the path above
    assert len(delta.nodes) > 18  # and b's, no longer stored: rows to delete
    backend.write(delta)
    state.persisted()
    assert state.unpersisted() == StateDelta({}, {})
    assert State(backend).root() == state.root() == ReferenceState({b"a": b"1"}).root()


def test_a_damaged_stored_tree_is_found_at_start() -> None:
    backend = _PersistingBackend()
    state = State(backend)
    state.begin_block()
    state.set(b"a", b"1")
    state.end_block()
    backend.write(state.unpersisted())
    bucket_root = min(at for at in backend.nodes if at[0] == STATE_BUCKET_LEVEL)
    backend.nodes[bucket_root] = b"\x00" * 32
    with pytest.raises(ValueError, match="do not hash up"):
        State(backend).check_tree()
