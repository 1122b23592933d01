"""The snapshot sync benchmark runs end to end at a small size: a store is built once and
reused, its snapshot served over loopback P2P to a fresh process that joins with the
node's join code and reaches the served state root (its figures are never asserted)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medchain.bench import run_snapshot_bench
from medchain.cli import app
from medchain.node import SnapshotFiles
from medchain.store import ChainStore

ENTRIES = 2_000


def test_an_empty_node_joins_the_served_snapshot_and_reaches_its_root(tmp_path: Path) -> None:
    first = run_snapshot_bench(tmp_path, ENTRIES)
    assert first.entries == ENTRIES and first.build_s is not None
    assert first.roots_match
    assert first.height == 1  # an empty block on the freshly built genesis: joined there
    assert first.chunks >= 1 and first.snapshot_bytes > 0
    # every checked piece came over the wire, with the channel's framing on top
    assert first.received_bytes > first.fetched_bytes > first.snapshot_bytes
    assert first.peak_rss_mb > 0
    served = tmp_path / f"state-{ENTRIES}"
    assert SnapshotFiles(served).heights() == [1]
    with ChainStore(served / "chain.sqlite") as store:
        assert len(store.load_state()) == ENTRIES
    again = run_snapshot_bench(tmp_path, ENTRIES)
    assert again.build_s is None and again.roots_match and again.height == 1


def test_the_command_prints_its_table_and_json(tmp_path: Path) -> None:
    args = ["bench", "snapshot", "--entries", "500", "--store", str(tmp_path)]
    table = CliRunner().invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "snapshot sync" in table.output and "equal" in table.output
    result = CliRunner().invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert figures["entries"] == 500 and figures["roots_match"] is True
    assert figures["build_s"] is None  # the table's run built the store
