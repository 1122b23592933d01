"""The resend policy devices and hubs share: only a lost connection is tried again, a
bounded number of times, and each resend is reported."""

from __future__ import annotations

import asyncio

import pytest

from medchain.gateway import _resend
from medchain.gateway._resend import resending


class Lost(Exception):
    pass


def _send(failures: list[BaseException], resent: list[str]) -> int:
    """Runs a send that raises `failures` in turn, then succeeds; how many tries it took."""
    tries = 0

    async def run() -> None:
        nonlocal tries
        async for attempt in resending(
            lambda exc: isinstance(exc, Lost), on_resend=lambda exc: resent.append(str(exc))
        ):
            with attempt:
                tries += 1
                if failures:
                    raise failures.pop(0)

    asyncio.run(run())
    return tries


@pytest.fixture(autouse=True)
def _quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_resend, "RESEND_FIRST_WAIT_S", 0.001)


def test_a_lost_connection_is_tried_again_until_it_answers() -> None:
    resent: list[str] = []
    assert _send([Lost("reset"), Lost("closed")], resent) == 3
    assert resent == ["reset", "closed"]


def test_resends_are_bounded_and_the_last_failure_is_raised() -> None:
    resent: list[str] = []
    failures: list[BaseException] = [Lost(str(i)) for i in range(_resend.RESEND_ATTEMPTS + 3)]
    with pytest.raises(Lost, match=str(_resend.RESEND_ATTEMPTS - 1)):
        _send(failures, resent)
    assert len(resent) == _resend.RESEND_ATTEMPTS - 1


def test_anything_else_is_raised_at_once() -> None:
    resent: list[str] = []
    with pytest.raises(ValueError, match="refused"):
        _send([ValueError("refused")], resent)
    assert resent == []
