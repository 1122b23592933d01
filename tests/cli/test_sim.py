"""`medchain sim` as a user runs it: tables, JSON, plots, sweeps and bad arguments."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from medchain.cli import app

runner = CliRunner()
SMALL = ["--nodes", "4", "--blocks", "6", "--block-interval", "100"]


def test_json_output_of_all_three_engines() -> None:
    result = runner.invoke(app, ["sim", "--consensus", "pbft,afbft,dpos", *SMALL, "--json"])
    assert result.exit_code == 0, result.output
    runs = json.loads(result.output)["runs"]
    assert [r["engine"] for r in runs] == ["pbft", "afbft", "dpos"]
    assert all(r["blocks"] >= 6 and r["safety_violations"] == [] for r in runs)
    again = json.loads(runner.invoke(app, ["sim", "--consensus", "pbft", *SMALL, "--json"]).output)
    assert again["runs"][0]["trace_hash"] == runs[0]["trace_hash"]


def test_the_processing_cost_per_message_reaches_the_run() -> None:
    def run(*extra: str) -> dict[str, object]:
        result = runner.invoke(app, ["sim", "--consensus", "pbft", *SMALL, *extra, "--json"])
        assert result.exit_code == 0, result.output
        runs: list[dict[str, object]] = json.loads(result.output)["runs"]
        return runs[0]

    default, free, costly = run(), run("--cpu-us", "0"), run("--cpu-us", "5000")
    assert default["trace_hash"] == free["trace_hash"]  # none by default
    assert costly["trace_hash"] != free["trace_hash"]
    assert run("--cpu-us", "5000")["trace_hash"] == costly["trace_hash"]


def test_attack_report_and_plot(tmp_path: Path) -> None:
    png = tmp_path / "attack.png"
    args = [
        "sim",
        "--consensus",
        "pbft",
        "--nodes",
        "7",
        "--blocks",
        "30",
        "--attack",
        "predictive",
        "--attack-k",
        "2",
        "--attack-from",
        "10",
        "--attack-to",
        "20",
        "--plot",
        str(png),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "attack window" in result.output and "kept" in result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_with_plot(tmp_path: Path) -> None:
    png = tmp_path / "sweep.png"
    result = runner.invoke(
        app,
        [
            "sim",
            "--sweep",
            "nodes=4,7",
            "--consensus",
            "pbft,dpos",
            "--blocks",
            "4",
            "--plot",
            str(png),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("pbft") >= 2 and png.exists()


def test_bad_arguments_say_what_to_use() -> None:
    bad = runner.invoke(app, ["sim", "--consensus", "raft", *SMALL])
    assert bad.exit_code == 1 and "pbft, afbft or dpos" in bad.output
    bad = runner.invoke(app, ["sim", *SMALL, "--byzantine", "wizard:1"])
    assert bad.exit_code == 1 and "KIND:COUNT" in bad.output
    bad = runner.invoke(app, ["sim", *SMALL, "--attack", "ddos"])
    assert bad.exit_code == 1 and "predictive" in bad.output
    bad = runner.invoke(app, ["sim", "--sweep", "latency=1,2"])
    assert bad.exit_code == 1 and "nodes=" in bad.output


def test_json_with_a_plot_prints_only_json_on_stdout(tmp_path: Path) -> None:
    png = tmp_path / "run.png"
    result = runner.invoke(app, ["sim", *SMALL, "--json", "--plot", str(png)])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["runs"][0]["engine"] == "pbft"
    assert f"plot written to {png}" in result.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_markdown_output_is_the_table_the_docs_embed() -> None:
    result = runner.invoke(app, ["sim", "--consensus", "pbft,dpos", *SMALL, "--markdown"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("| engine | nodes | blocks |") and lines[1].startswith("|:---|")
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| pbft", "| dpos"]
    both = runner.invoke(app, ["sim", *SMALL, "--markdown", "--json"])
    assert both.exit_code == 1 and "not both" in both.output


def test_attack_reactions_run_once_each() -> None:
    args = ["sim", "--consensus", "afbft", "--nodes", "7", "--blocks", "30", "--attack"]
    args += ["predictive", "--attack-k", "2", "--attack-from", "10", "--attack-to", "20"]
    result = runner.invoke(app, [*args, "--attack-reactions", "50,1000", "--json"])
    assert result.exit_code == 0, result.output
    attacks = json.loads(result.stdout)["attack"]
    assert [a["reaction_ms"] for a in attacks] == [50, 1000]
    bad = runner.invoke(app, [*args, "--attack-reactions", "fast"])
    assert bad.exit_code == 1 and "--attack-reactions" in bad.output
    alone = runner.invoke(app, ["sim", *SMALL, "--attack-reactions", "50"])
    assert alone.exit_code == 1 and "--attack predictive" in alone.output
