"""The simulator's figures as Markdown pipe tables (what the docs embed)."""

from __future__ import annotations

from medchain.consensus import EngineKind
from medchain.sim import AttackWindow, Scenario, attack_markdown, markdown_table, run_engines
from medchain.sim._experiments import AttackReport
from medchain.sim._markdown import ATTACK_COLUMNS
from medchain.sim._report import COLUMNS


def test_a_table_aligns_its_figures_right_and_escapes_pipes() -> None:
    text = markdown_table(("name", "n"), [("a|b", "1,000"), ("c", "2")])
    assert text.splitlines() == [
        "| name | n |",
        "|:---|---:|",
        "| a\\|b | 1,000 |",
        "| c | 2 |",
    ]


def test_the_summary_has_the_console_columns_and_a_row_per_run() -> None:
    runs = run_engines(Scenario(nodes=4, blocks=4, block_interval_ms=100), [EngineKind.PBFT])
    header, _, row = runs.markdown().splitlines()
    assert header == "| " + " | ".join(COLUMNS) + " |"
    summary = runs.results[0].summary()
    assert row.startswith(f"| pbft | 4 | {summary.blocks} | ")
    assert row.endswith(f" | {summary.latency_p50_ms} | {summary.latency_p99_ms} |")


def test_the_attack_table_says_blocks_around_the_window_and_the_rate_kept() -> None:
    report = AttackReport(34_500, 69_000, 34, 17, 30, 59.13, 29.57, reaction_ms=1_000)
    [_, _, row] = attack_markdown([("afbft", report)]).splitlines()
    cells = row.strip("| ").split(" | ")
    assert dict(zip(ATTACK_COLUMNS, cells, strict=True)) == {
        "engine": "afbft",
        "attacker reaction (ms)": "1,000",
        "attack window (s)": "34-69",
        "blocks before": "34",
        "blocks during": "17",
        "blocks after": "30",
        "blocks/min before": "59.1",
        "blocks/min during": "29.6",
        "kept": "50%",
    }


def test_an_attacked_run_carries_its_reaction_time() -> None:
    base = Scenario(nodes=7, blocks=30, block_interval_ms=100, round_timeout_ms=600)
    runs = run_engines(base, [EngineKind.PBFT], AttackWindow(10, 20, 2, 250))
    assert runs.attacks[0][1].reaction_ms == 250
