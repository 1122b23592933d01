"""The tests' waiting helpers: they return once the condition holds and fail, naming
what was awaited, when it never does."""

from __future__ import annotations

import asyncio
import threading

import pytest

from tests.waiting import until, wait_until


def test_wait_until_returns_once_another_thread_meets_the_condition() -> None:
    done = threading.Event()
    threading.Timer(0.05, done.set).start()
    wait_until(done.is_set, 60, "the timer")
    assert done.is_set()


def test_wait_until_names_what_it_waited_for_at_the_deadline() -> None:
    with pytest.raises(AssertionError, match=r"timed out after 0.05 s waiting for the moon"):
        wait_until(lambda: False, 0.05, "the moon")


def test_wait_until_treats_the_ignored_errors_as_not_yet() -> None:
    calls: list[int] = []

    def flaky() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("still starting")
        return True

    wait_until(flaky, 60, "the server", ignoring=(ConnectionError,))
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ConnectionError, match="still starting"):  # not ignored: raised
        wait_until(flaky, 60, "the server")


def test_until_lets_the_loop_run_while_it_waits() -> None:
    async def main() -> list[str]:
        seen: list[str] = []
        asyncio.get_running_loop().call_later(0.05, seen.append, "ran")
        await until(lambda: seen, 60, "the callback")
        return seen

    assert asyncio.run(main()) == ["ran"]


def test_until_names_what_it_waited_for_at_the_deadline() -> None:
    with pytest.raises(AssertionError, match="waiting for the tide"):
        asyncio.run(until(lambda: False, 0.05, "the tide"))
