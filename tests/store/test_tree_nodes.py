"""The state tree's nodes as stored: computed from cell roots, and checked."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import (
    STATE_BUCKET_LEVEL,
    STATE_EMPTY_SUBTREES,
    STATE_ROOT_LEVEL,
    state_cell_of,
    state_root_of,
)
from medchain.store import cell_roots, tree_nodes_of, tree_root

entries_strategy = st.dictionaries(st.binary(max_size=12), st.binary(max_size=12), max_size=60)


def rows_of(entries: dict[bytes, bytes]) -> list[tuple[int, bytes, bytes]]:
    return sorted((state_cell_of(k), k, v) for k, v in entries.items())


@settings(max_examples=60)
@given(entries_strategy)
def test_the_nodes_over_the_cell_roots_hold_the_state_root(entries: dict[bytes, bytes]) -> None:
    nodes = tree_nodes_of(cell_roots(rows_of(entries)))
    assert tree_root(nodes) == state_root_of(entries)
    assert nodes == sorted(nodes)
    assert all(hash_ != STATE_EMPTY_SUBTREES[level] for level, _, hash_ in nodes)
    cells = {state_cell_of(k) for k in entries}
    assert {index for level, index, _ in nodes if level == 0} == cells
    assert {level for level, _, _ in nodes} <= {0, *range(STATE_BUCKET_LEVEL, STATE_ROOT_LEVEL + 1)}
    # one node per level per distinct path: never more than a path per cell
    assert len(nodes) <= len(cells) * (STATE_ROOT_LEVEL - STATE_BUCKET_LEVEL + 2)


def test_the_empty_state_stores_no_node() -> None:
    assert tree_nodes_of({}) == []
    assert tree_root([]) == state_root_of({})
