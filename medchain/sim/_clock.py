"""Virtual time and seeded randomness: the two things that make a run repeatable.

Time is an integer count of microseconds (engines see whole milliseconds), so the
bandwidth model's serialisation delays stay exact and no float ever decides an
order. Events that fall on the same microsecond leave the heap in the order they
were scheduled (a sequence number breaks the tie), never by comparing payloads.
"""

from __future__ import annotations

import heapq
import random
from typing import Generic, TypeVar

from medchain.types import tagged_hash

T = TypeVar("T")

US_PER_MS = 1000


def ms_to_us(ms: int) -> int:
    return ms * US_PER_MS


def us_to_ms(us: int) -> int:
    """The millisecond an engine sees for a microsecond instant (floor)."""
    return us // US_PER_MS


def derive_rng(salt: bytes, label: str, *numbers: int) -> random.Random:
    """An independent stream for one link or node, fixed by the simulator's seed.

    Deriving by hash rather than drawing in creation order keeps every stream the
    same when traffic on another link (or the node count) changes."""
    parts = [n.to_bytes(8, "big", signed=True) for n in numbers]
    digest = tagged_hash("medchain/sim/rng/" + label, salt, *parts)
    return random.Random(int.from_bytes(digest, "big"))


class EventQueue(Generic[T]):
    """A heap of (time, sequence number, item) with a clock that only moves forward."""

    __slots__ = ("_heap", "_now", "_seq")

    def __init__(self, start_us: int = 0) -> None:
        self._heap: list[tuple[int, int, T]] = []
        self._now = start_us
        self._seq = 0

    @property
    def now_us(self) -> int:
        return self._now

    def push(self, at_us: int, item: T) -> int:
        """Schedule `item` at `at_us` (not before now); returns its sequence number."""
        if at_us < self._now:
            raise ValueError(f"cannot schedule at {at_us} us, the clock reads {self._now} us")
        seq = self._seq
        self._seq += 1
        heapq.heappush(self._heap, (at_us, seq, item))
        return seq

    def peek_time(self) -> int | None:
        return self._heap[0][0] if self._heap else None

    def pop(self) -> tuple[int, T]:
        """Remove the earliest item and move the clock to its time."""
        at_us, _, item = heapq.heappop(self._heap)
        self._now = at_us
        return at_us, item

    def advance_to(self, at_us: int) -> None:
        """Let time pass with nothing happening (never past a pending item)."""
        head = self.peek_time()
        if head is not None and head < at_us:
            raise ValueError("cannot advance past a pending event")
        self._now = max(self._now, at_us)

    def __len__(self) -> int:
        return len(self._heap)
