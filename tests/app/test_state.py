"""The state: layered writes that vanish on error, and a root that depends only on content."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medchain.app import State

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
