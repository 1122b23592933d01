"""The on-disk state benchmark runs end to end at small sizes: it builds each store once,
opens it in a fresh process, commits and reports (its figures are never asserted)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from medchain.app import State
from medchain.bench import run_state_disk_bench
from medchain.cli import app
from medchain.store import ChainStore


def test_disk_bench_builds_once_then_reuses_each_store(tmp_path: Path) -> None:
    first = run_state_disk_bench(tmp_path, (200, 500), changes=5, blocks=2)
    assert [(t.entries, t.changes, t.blocks) for t in first] == [(200, 5, 2), (500, 5, 2)]
    assert all(t.build_s is not None and t.peak_rss_mb > 0 for t in first)
    assert all(0 < t.block_ms_p50 <= t.block_ms_max for t in first)
    assert all(0 < t.root_ms_p50 < t.block_ms_max and t.commit_ms_p50 > 0 for t in first)
    again = run_state_disk_bench(tmp_path, (500,), changes=5, blocks=2)
    assert again[0].build_s is None
    with ChainStore(tmp_path / "state-500" / "chain.sqlite") as store:
        assert store.latest_height() == 6  # 3 blocks a run, the first one untimed
        assert len(store.load_state()) == 500 + 6 * 5
        assert State(store.state).root() == store.latest_block().header.state_root


def test_disk_bench_command_prints_its_table(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["bench", "state", "--sizes", "100", "--blocks", "1", "--store", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "state on disk" in result.output and "100" in result.output
    assert "state root / commit" in result.output
