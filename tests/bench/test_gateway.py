"""The gateway benchmark's steady-state rate: counted from one commit to the next inside
the window, so a pipeline filling or draining does not weigh on it."""

from __future__ import annotations

import pytest

from medchain.bench._gateway import steady_rate


def test_the_rate_runs_from_the_first_commit_to_the_last() -> None:
    # 1,000 readings a second, committed a second's worth at a time
    commits = [t for second in range(1, 11) for t in [float(second)] * 1_000]
    rate, window = steady_rate(commits, 0.0, 100.0)
    assert window == 9.0 and rate == pytest.approx(1_000.0)  # the first commit not counted


def test_commits_outside_the_window_are_left_out() -> None:
    commits = [0.5] * 5_000 + [2.0] * 100 + [3.0] * 100 + [4.0] * 100 + [9.0] * 5_000
    rate, window = steady_rate(commits, 1.0, 5.0)
    assert window == 2.0 and rate == pytest.approx(100.0)


def test_a_falling_behind_pipeline_shows_its_own_rate() -> None:
    # offered 1,000/s but committed in ever larger, ever later batches: 500/s
    commits = [1.0] * 500 + [3.0] * 1_000 + [5.0] * 1_000
    rate, _ = steady_rate(commits, 0.0, 10.0)
    assert rate == pytest.approx(500.0)


def test_fewer_than_two_commits_give_no_rate() -> None:
    assert steady_rate([], 0.0, 10.0) == (0.0, 0.0)
    assert steady_rate([2.0] * 50, 0.0, 10.0) == (0.0, 0.0)
