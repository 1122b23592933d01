"""A local chain whose block time runs ahead on demand, so that a command's expiry in
days can pass within a test (the commands compute expiries from the wall clock)."""

from __future__ import annotations

from pathlib import Path

import pytest

from medchain.node import LocalChain, wall_clock_ms

MS_PER_DAY = 86_400_000


class Clock:
    def __init__(self) -> None:
        self.ahead_ms = 0

    def now(self) -> int:
        return wall_clock_ms() + self.ahead_ms

    def skip_days(self, days: int) -> None:
        self.ahead_ms += days * MS_PER_DAY


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Every local chain the commands open takes its block time from this clock."""
    shifted = Clock()
    real_open = LocalChain.open.__func__  # type: ignore[attr-defined]

    def open_shifted(cls: type[LocalChain], home: Path, clock: object = None) -> LocalChain:
        chain: LocalChain = real_open(cls, home, shifted.now)
        return chain

    monkeypatch.setattr(LocalChain, "open", classmethod(open_shifted))
    return shifted
