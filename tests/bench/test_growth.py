"""The growth benchmark commits real batches and measures what they leave behind (its
figures are for docs/GATEWAY.md and docs/BENCHMARKS.md, never asserted as targets)."""

from __future__ import annotations

from typer.testing import CliRunner

from medchain.bench import GrowthLoad, run_growth_bench
from medchain.cli import app


def test_growth_bench_measures_each_load() -> None:
    loads = (GrowthLoad("wide", 30, 1), GrowthLoad("deep", 15, 4))  # a few pages each
    results = run_growth_bench(loads, batches=4)
    assert [(g.load, g.batches, g.readings) for g in results] == [
        (loads[0], 4, 120),
        (loads[1], 4, 240),
    ]
    for growth in results:
        assert growth.state_entries > 0 and growth.state_bytes > 0
        assert growth.disk_bytes["chain.sqlite"] > 0
        assert growth.disk_bytes["chain-vitals.sqlite"] > 0  # the node's index of bundles
        assert "chain-fleet.sqlite" in growth.disk_bytes  # and of gateways and devices
        assert growth.per_day(growth.state_bytes) == growth.state_bytes / 4 * 86_400


def test_growth_bench_command_prints_its_table() -> None:
    result = CliRunner().invoke(app, ["bench", "state-growth", "--batches", "2"])
    assert result.exit_code == 0, result.output
    assert "growth per reading" in result.output and "district" in result.output
