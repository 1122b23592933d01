"""The web app's benchmark runs end to end on a few records and readings, in Chromium
against a one-validator devnet (what it measures, not how fast)."""

from __future__ import annotations

import pytest

from medchain.bench import app_report, run_app_bench

pytestmark = pytest.mark.slow


def test_a_small_run_times_every_page_and_the_explorers_blocks() -> None:
    stages: set[str] = set()
    result = run_app_bench(
        records=3, readings=60, explorer_blocks=2, progress=lambda s, done, total: stages.add(s)
    )
    assert (result.records, result.readings, result.explorer_blocks) == (3, 60, 2)
    assert 0 < result.chart_points <= 60  # the chart drew the readings, bucketed
    assert min(result.first_load_ms, result.timeline_ms, result.first_chart_ms) > 0
    assert result.chart_ms > 0
    assert result.explorer_delay_max_ms >= result.explorer_delay_ms
    assert {"write records", "send readings", "explorer blocks"} <= stages
    report = app_report(result)
    assert result.cold_read_ms > 0 and result.warmup_ms > 0
    assert len(report.rows) == 8
    assert "timeline of 3 records" in report.rows[1][0]
