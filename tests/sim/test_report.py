"""The comparison table and the PNG plot."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.console import Console

from medchain.sim import (
    LinkConfig,
    NetworkConfig,
    SimConfig,
    SimResult,
    SimSummary,
    Simulator,
    plot,
    summary_table,
)
from medchain.sim._report import COLUMNS
from tests.sim._engines import ping_pong_factory, specs


def toy_run(label: str, latency_ms: int) -> SimResult:
    config = SimConfig(specs(4), NetworkConfig(LinkConfig(latency_ms=latency_ms)), label=label)
    return Simulator(config, ping_pong_factory(4)).run(until_ms=2_000)


def test_the_table_has_a_row_per_run() -> None:
    runs: list[SimResult | SimSummary] = [toy_run("fast", 10), toy_run("slow", 50).summary()]
    table = summary_table(runs)
    assert [c.header for c in table.columns] == list(COLUMNS)
    assert table.row_count == 2
    console = Console(record=True, width=250)
    console.print(table)
    text = console.export_text()
    assert "fast" in text and "slow" in text
    assert "9.0" in text  # messages per block of the toy protocol


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    out = plot([toy_run("fast", 10), toy_run("slow", 50)], tmp_path / "runs.png", shade=[(0, 500)])
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
