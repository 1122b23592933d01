"""The state tree's upper tier as stored: computed from bucket roots, and checked."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import STATE_BUCKET_BITS, STATE_EMPTY_SUBTREES, state_bucket_of, state_root_of
from medchain.store import bucket_roots, tree_root, upper_tier

entries_strategy = st.dictionaries(st.binary(max_size=12), st.binary(max_size=12), max_size=60)


def rows_of(entries: dict[bytes, bytes]) -> list[tuple[int, bytes, bytes]]:
    return sorted((state_bucket_of(k), k, v) for k, v in entries.items())


@settings(max_examples=60)
@given(entries_strategy)
def test_upper_tier_of_the_bucket_roots_holds_the_state_root(entries: dict[bytes, bytes]) -> None:
    nodes = upper_tier(bucket_roots(rows_of(entries)))
    assert tree_root(nodes) == state_root_of(entries)
    assert nodes == sorted(nodes)
    assert all(hash_ != STATE_EMPTY_SUBTREES[level] for level, _, hash_ in nodes)
    buckets = {state_bucket_of(k) for k in entries}
    assert {index for level, index, _ in nodes if level == 0} == buckets
    # one node per level per distinct path: never more than a path per bucket
    assert len(nodes) <= len(buckets) * (STATE_BUCKET_BITS + 1)


def test_the_empty_state_stores_no_node() -> None:
    assert upper_tier({}) == []
    assert tree_root([]) == state_root_of({})
