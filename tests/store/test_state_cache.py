"""StateCache: bounded in bytes, least recently used out first, kept up to date."""

from __future__ import annotations

import pytest

from medchain.app import state_bucket_of
from medchain.store import StateCache


def test_entries_and_absences_are_cached() -> None:
    cache = StateCache(10_000)
    assert cache.entry(b"k") == (False, None)
    cache.keep_entry(b"k", b"v")
    cache.keep_entry(b"gone", None)
    assert cache.entry(b"k") == (True, b"v")
    assert cache.entry(b"gone") == (True, None)


def test_memory_stays_under_the_bound_and_old_entries_leave_first() -> None:
    cache = StateCache(20_000)
    for n in range(2_000):
        cache.keep_entry(b"key-%d" % n, b"v" * 50)
        cache.keep_bucket(n, tuple((b"b%d-%d" % (n, i), b"x" * 40) for i in range(3)))
        assert cache.size_bytes <= 20_000
    assert cache.entry(b"key-0") == (False, None)
    assert cache.entry(b"key-1999") == (True, b"v" * 50)
    assert cache.bucket(0) is None
    assert cache.bucket(1999) is not None


def test_something_larger_than_the_cache_is_not_kept() -> None:
    cache = StateCache(1_000)
    cache.keep_entry(b"big", b"x" * 5_000)
    assert cache.entry(b"big") == (False, None)
    cache.keep_bucket(1, ((b"k", b"x" * 5_000),))
    assert cache.bucket(1) is None
    assert cache.size_bytes == 0


def test_a_zero_cache_keeps_nothing_and_a_negative_one_is_refused() -> None:
    cache = StateCache(0)
    cache.keep_entry(b"k", b"v")
    assert cache.entry(b"k") == (False, None)
    with pytest.raises(ValueError, match="must not be negative"):
        StateCache(-1)


def keys_in_one_bucket(count: int) -> tuple[int, list[bytes]]:
    bucket = state_bucket_of(b"k0")
    keys = sorted(k for k in (b"k%d" % n for n in range(400_000)) if state_bucket_of(k) == bucket)
    return bucket, keys[:count]


def test_applied_changes_update_cached_entries_and_buckets() -> None:
    bucket, (a, b, c, d) = keys_in_one_bucket(4)
    cache = StateCache(100_000)
    cache.keep_entry(a, b"1")
    cache.keep_entry(d, None)
    cache.keep_bucket(bucket, ((a, b"1"), (b, b"2"), (c, b"3")))
    cache.apply({a: None, b: b"22", d: b"4", b"other": b"o"})
    assert cache.entry(a) == (True, None)
    assert cache.entry(d) == (True, b"4")
    assert cache.entry(b"other") == (False, None)  # not read before: not cached now
    assert cache.bucket(bucket) == ((b, b"22"), (c, b"3"), (d, b"4"))
    cache.clear()
    assert cache.bucket(bucket) is None
    assert cache.size_bytes == 0
