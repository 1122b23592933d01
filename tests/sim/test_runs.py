"""What `medchain sim` runs, without the command line: specs read or refused, one run
per engine (attacked or swept), and the report as data."""

from __future__ import annotations

import pytest

from medchain.consensus import EngineKind
from medchain.sim import (
    AttackWindow,
    Scenario,
    parse_byzantine,
    parse_engines,
    parse_sweep,
    run_engines,
    run_reactions,
    run_sweep,
)
from medchain.sim._chain import Byzantine
from medchain.types import MedchainError

FAST = Scenario(nodes=4, blocks=4, block_interval_ms=100, round_timeout_ms=600)


def test_engines_are_read_in_order() -> None:
    assert parse_engines("dpos, pbft") == [EngineKind.DPOS, EngineKind.PBFT]
    for bad in ("raft", "", ","):
        with pytest.raises(MedchainError, match="pbft, afbft or dpos"):
            parse_engines(bad)


def test_byzantine_roles_count_one_unless_told() -> None:
    assert parse_byzantine(None, 4) == ()
    assert parse_byzantine("silent,forge:2", 4) == ((Byzantine.SILENT, 1), (Byzantine.FORGE, 2))
    with pytest.raises(MedchainError, match="KIND:COUNT"):
        parse_byzantine("wizard:1", 4)
    with pytest.raises(MedchainError, match="KIND:COUNT"):
        parse_byzantine("silent:0", 4)
    with pytest.raises(MedchainError, match="more nodes than the 2 simulated"):
        parse_byzantine("silent:3", 2)


def test_a_sweep_is_over_node_counts_within_bounds() -> None:
    assert parse_sweep("nodes=4,7", 10) == [4, 7]
    with pytest.raises(MedchainError, match="only --sweep nodes"):
        parse_sweep("latency=1,2", 10)
    with pytest.raises(MedchainError, match="from 1 to 10"):
        parse_sweep("nodes=4,11", 10)


def test_one_run_per_engine_and_a_report_for_each() -> None:
    runs = run_engines(FAST, [EngineKind.PBFT, EngineKind.DPOS])
    report = runs.to_json()
    assert [r["engine"] for r in report["runs"]] == ["pbft", "dpos"]
    assert all(r["blocks"] >= 4 and r["safety_violations"] == [] for r in report["runs"])
    assert report["attack"] == [] and runs.attack_lines() == []
    runs.check_safety()
    again = run_engines(FAST, [EngineKind.PBFT]).to_json()["runs"][0]
    assert again["trace_hash"] == report["runs"][0]["trace_hash"]


def test_an_attacked_run_reports_its_window() -> None:
    base = Scenario(nodes=7, blocks=30, block_interval_ms=100, round_timeout_ms=600)
    runs = run_engines(base, [EngineKind.PBFT], AttackWindow(10, 20, 2, 1_000))
    [(engine, report)] = runs.attacks
    assert engine is EngineKind.PBFT
    assert report.window_end_ms > report.window_start_ms > 0
    [line] = runs.attack_lines()
    assert line.startswith("pbft: attack window") and "kept" in line
    assert runs.to_json()["attack"][0]["kept"] == report.kept


def test_a_sweep_runs_every_engine_at_every_count() -> None:
    seen: list[str] = []
    runs = run_sweep(FAST, [EngineKind.PBFT, EngineKind.AFBFT], [4, 5], seen.append)
    assert seen == ["pbft n=4", "pbft n=5", "afbft n=4", "afbft n=5"]
    assert [len(r.nodes) for r in runs.results] == [4, 5, 4, 5]


def test_reaction_times_give_a_run_each_and_the_markdown_names_them() -> None:
    base = Scenario(nodes=7, blocks=30, block_interval_ms=100, round_timeout_ms=600)
    window = AttackWindow(10, 20, 2, 1_000)
    runs = run_reactions(base, [EngineKind.AFBFT], window, [50, 500])
    assert [rep.reaction_ms for _, rep in runs.attacks] == [50, 500]
    alone = run_engines(base, [EngineKind.AFBFT], AttackWindow(10, 20, 2, 500))
    assert runs.attacks[1][1] == alone.attacks[0][1]  # the same run as asked on its own
    text = runs.markdown()
    summary, attack = text.split("\n\n")
    assert summary.count("\n| afbft |") == 2
    assert [line.split(" | ")[1] for line in attack.splitlines()[2:]] == ["50", "500"]


def test_the_markdown_of_a_plain_run_is_one_table() -> None:
    runs = run_engines(FAST, [EngineKind.PBFT])
    text = runs.markdown()
    assert "\n\n" not in text
    assert text.splitlines()[2].startswith("| pbft | 4 | ")
