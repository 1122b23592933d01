"""`medchain sim catch-up` and `medchain sim bandwidth` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medchain.cli import app

runner = CliRunner()
CATCH_UP = ["sim", "catch-up", "--max-z", "3", "--runs", "200"]
BANDWIDTH = ["sim", "bandwidth", "--nodes", "4,5", "--block-kb", "0,100", "--blocks", "4"]


def test_catch_up_as_json_markdown_and_a_plot(tmp_path: Path) -> None:
    png = tmp_path / "catch-up.png"
    result = runner.invoke(app, [*CATCH_UP, "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["q"], r["z"]) for r in rows] == [(q, z) for q in (0.1, 0.3) for z in range(4)]
    assert round(rows[1]["nakamoto"], 7) == 0.2045873
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and "plot written" in result.stderr
    markdown = runner.invoke(app, [*CATCH_UP, "--markdown"]).stdout.splitlines()
    assert markdown[0].startswith("| q | z | Nakamoto's formula |") and len(markdown) == 10
    table = runner.invoke(app, [*CATCH_UP, "--q", "60"])
    assert table.exit_code == 0 and "0.6" in table.stdout


def test_catch_up_refuses_a_share_it_cannot_race() -> None:
    even = runner.invoke(app, ["sim", "catch-up", "--q", "50"])
    assert even.exit_code == 1 and "use 49 or 51" in even.output
    bad = runner.invoke(app, ["sim", "catch-up", "--q", "0.1"])
    assert bad.exit_code == 1 and "--q" in bad.output


def test_bandwidth_rows_per_engine_count_and_block_size(tmp_path: Path) -> None:
    png = tmp_path / "bandwidth.png"
    result = runner.invoke(app, [*BANDWIDTH, "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [(r["nodes"], r["block_bytes"]) for r in rows] == [
        (4, 0),
        (4, 100_000),
        (5, 0),
        (5, 100_000),
    ]
    assert rows[1]["busiest_kb_s"] > rows[0]["busiest_kb_s"] and png.exists()
    markdown = runner.invoke(app, [*BANDWIDTH, "--markdown", "--link-mbps", "10"]).stdout
    assert "| busiest, share of 10 Mbit/s |" in markdown and markdown.count("\n| pbft |") == 4


def test_bandwidth_needs_two_nodes() -> None:
    bad = runner.invoke(app, ["sim", "bandwidth", "--nodes", "1,4"])
    assert bad.exit_code == 1 and "--nodes" in bad.output
