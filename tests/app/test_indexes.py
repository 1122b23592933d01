"""Counted lists and sets: order, membership, removal by swapping, no stray keys."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from medchain.app._indexes import CountedList, CountedSet
from medchain.app._state import State

OWNER = b"\x01" * 20


def test_a_list_keeps_the_order_of_appending_per_owner() -> None:
    state, index = State(), CountedList(b"t/")
    with state.layer():
        for item in (b"c", b"a", b"b"):
            index.append(state, OWNER, item)
        index.append(state, b"other", b"z")
        assert index.items(state, OWNER) == [b"c", b"a", b"b"]
        assert index.count(state, OWNER) == 3
        assert index.items(state, b"other") == [b"z"]
        assert index.items(state, b"nobody") == []


def test_owners_whose_names_prefix_each_other_do_not_mix() -> None:
    state, index = State(), CountedList(b"t/")
    with state.layer():
        index.append(state, b"st", b"1")
        index.append(state, b"st-mary", b"2")
        assert index.items(state, b"st") == [b"1"]
        assert index.items(state, b"st-mary") == [b"2"]


@given(st.lists(st.tuples(st.booleans(), st.sampled_from([bytes([i]) * 20 for i in range(6)]))))
def test_a_set_matches_a_python_set_under_any_adds_and_removes(
    changes: list[tuple[bool, bytes]],
) -> None:
    state, index, model = State(), CountedSet(b"s/"), set[bytes]()
    with state.layer():
        for add, item in changes:
            if add:
                index.add(state, OWNER, item)
                model.add(item)
            else:
                index.remove(state, OWNER, item)
                model.discard(item)
            assert index.items(state, OWNER) == sorted(model)
            assert index.count(state, OWNER) == len(model)
            assert all(index.contains(state, OWNER, i) == (i in model) for i in model | {item})


def test_emptying_a_set_leaves_no_key_behind() -> None:
    state, index = State(), CountedSet(b"s/")
    with state.layer():
        index.add(state, OWNER, b"a" * 20)
        index.add(state, OWNER, b"b" * 20)
        index.remove(state, OWNER, b"a" * 20)
        index.remove(state, OWNER, b"b" * 20)
        assert index.count(state, OWNER) == 0
    assert state.root() == State().root()
