"""StateCache: bounded in bytes, least recently used out first, kept up to date."""

from __future__ import annotations

import pytest

from medchain.app import state_cell_of
from medchain.store import StateCache


def test_memory_stays_under_the_bound_and_old_cells_leave_first() -> None:
    cache = StateCache(20_000)
    for n in range(2_000):
        cache.keep_cell(n, tuple((b"b%d-%d" % (n, i), b"x" * 40) for i in range(3)))
        assert cache.size_bytes <= 20_000
    assert cache.cell(0) is None
    assert cache.cell(1999) is not None


def test_something_larger_than_the_cache_is_not_kept() -> None:
    cache = StateCache(1_000)
    cache.keep_cell(1, ((b"k", b"x" * 5_000),))
    assert cache.cell(1) is None
    assert cache.size_bytes == 0


def test_a_zero_cache_keeps_nothing_and_a_negative_one_is_refused() -> None:
    cache = StateCache(0)
    cache.keep_cell(1, ((b"k", b"v"),))
    assert cache.cell(1) is None
    with pytest.raises(ValueError, match="must not be negative"):
        StateCache(-1)


def keys_in_one_cell(count: int) -> tuple[int, list[bytes]]:
    """The first `count` keys b"k<n>" to share a cell (about 100,000 tried for 4)."""
    cells: dict[int, list[bytes]] = {}
    for key in (b"k%d" % n for n in range(10_000_000)):
        keys = cells.setdefault(state_cell_of(key), [])
        keys.append(key)
        if len(keys) == count:
            return state_cell_of(key), sorted(keys)
    raise AssertionError("no cell holds that many of the keys")


def test_applied_changes_update_cached_cells() -> None:
    cell, (a, b, c, d) = keys_in_one_cell(4)
    cache = StateCache(100_000)
    cache.keep_cell(cell, ((a, b"1"), (b, b"2"), (c, b"3")))
    cache.apply({a: None, b: b"22", d: b"4", b"other": b"o"})
    assert cache.cell(cell) == ((b, b"22"), (c, b"3"), (d, b"4"))
    assert cache.cell(state_cell_of(b"other")) is None  # not read before: not cached now
    cache.clear()
    assert cache.cell(cell) is None
    assert cache.size_bytes == 0
