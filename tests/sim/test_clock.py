"""Virtual time: ties leave in scheduling order, the clock never runs backwards, and
derived random streams are fixed by their salt and label alone."""

from __future__ import annotations

import pytest

from medchain.sim import EventQueue, derive_rng
from medchain.sim._clock import ms_to_us, us_to_ms


def test_ties_leave_in_the_order_they_were_scheduled() -> None:
    queue: EventQueue[str] = EventQueue()
    for name in ["c", "a", "b"]:
        queue.push(5, name)
    queue.push(3, "early")
    assert [queue.pop() for _ in range(4)] == [(3, "early"), (5, "c"), (5, "a"), (5, "b")]
    assert queue.now_us == 5
    assert len(queue) == 0


def test_payloads_are_never_compared() -> None:
    queue: EventQueue[object] = EventQueue()
    queue.push(1, object())
    queue.push(1, object())  # object() has no ordering: only (time, seq) is compared
    queue.pop()
    queue.pop()


def test_the_clock_only_moves_forward() -> None:
    queue: EventQueue[int] = EventQueue(start_us=100)
    with pytest.raises(ValueError):
        queue.push(99, 0)
    queue.push(200, 1)
    with pytest.raises(ValueError):
        queue.advance_to(300)
    queue.advance_to(150)
    assert queue.now_us == 150
    assert queue.peek_time() == 200


def test_engines_see_whole_milliseconds() -> None:
    assert ms_to_us(7) == 7000
    assert us_to_ms(7999) == 7
    assert us_to_ms(8000) == 8


def test_derived_streams_depend_only_on_salt_label_and_numbers() -> None:
    def draw(salt: bytes, label: str, *nums: int) -> list[int]:
        rng = derive_rng(salt, label, *nums)
        return [rng.randrange(1 << 30) for _ in range(4)]

    assert draw(b"s", "link", 0, 1) == draw(b"s", "link", 0, 1)
    assert draw(b"s", "link", 0, 1) != draw(b"s", "link", 1, 0)
    assert draw(b"s", "link", 0, 1) != draw(b"t", "link", 0, 1)
    assert draw(b"s", "link", 0, 1) != draw(b"s", "node", 0, 1)
