"""The state root benchmark runs end to end at small sizes and reports what it timed
(its figures are for docs/BENCHMARKS.md, never asserted)."""

from __future__ import annotations

from typer.testing import CliRunner

from medchain.bench import run_state_bench
from medchain.cli import app


def test_state_bench_reports_each_size() -> None:
    timings = run_state_bench((50, 300), changes=7, blocks=2)
    assert [(t.entries, t.changes, t.blocks) for t in timings] == [(50, 7, 2), (300, 7, 2)]
    assert all(0 < t.block_ms_p50 <= t.block_ms_max for t in timings)


def test_state_bench_command_prints_its_table() -> None:
    result = CliRunner().invoke(app, ["bench", "state", "--sizes", "100", "--blocks", "1"])
    assert result.exit_code == 0, result.output
    assert "state root per block" in result.output and "100" in result.output
