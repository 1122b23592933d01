"""Waiting on conditions, the one way the tests wait.

The tests run on machines busy with other work, so a test never sleeps for a guessed
time and hopes: it polls what it waits for, with a deadline generous enough for a
machine many times slower than usual (a deadline only costs time when the test fails
anyway), and a timeout says what was awaited."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

PATIENCE_S = 60.0
"""The default deadline: far beyond what any condition here takes on an idle machine."""
POLL_S = 0.01
"""How often a condition is checked: short, so a met condition is seen at once."""


def wait_until(
    condition: Callable[[], object],
    timeout_s: float = PATIENCE_S,
    what: str = "the condition",
    *,
    ignoring: tuple[type[Exception], ...] = (),
    poll_s: float = POLL_S,
) -> None:
    """Return once `condition()` is truthy; an AssertionError naming `what` at the deadline.

    Exceptions of the `ignoring` types count as "not yet" (a server still starting)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(*ignoring):
            if condition():
                return
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(poll_s)  # the poll interval between checks, not a guess at a duration


async def until(
    condition: Callable[[], object],
    timeout_s: float = PATIENCE_S,
    what: str = "the condition",
    *,
    poll_s: float = POLL_S,
) -> None:
    """`wait_until` for a test on an event loop: the loop runs while the condition is not met."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(poll_s)  # yields to the loop between checks
