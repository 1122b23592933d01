"""The simulator's figures as Markdown tables, the form the docs embed them in
(`medchain docs` rewrites each generated block of a page from its command)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from medchain.sim._experiments import AttackReport
from medchain.sim._metrics import SimResult
from medchain.sim._report import COLUMNS, summary_row

ATTACK_COLUMNS = (
    "engine",
    "attacker reaction (ms)",
    "attack window (s)",
    "blocks before",
    "blocks during",
    "blocks after",
    "blocks/min before",
    "blocks/min during",
    "kept",
)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A pipe table: the first column left-aligned, the figures right-aligned."""
    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join([":---"] + ["---:"] * (len(headers) - 1)) + "|",
    ]
    for row in rows:
        cells = [cell.replace("|", "\\|") for cell in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary_markdown(results: Sequence[SimResult]) -> str:
    """The summary table `medchain sim` prints, one row per run."""
    return markdown_table(COLUMNS, (summary_row(r.summary()) for r in results))


def attack_row(engine: str, report: AttackReport) -> tuple[str, ...]:
    return (
        engine,
        f"{report.reaction_ms:,}",
        f"{report.window_start_ms / 1000:.0f}-{report.window_end_ms / 1000:.0f}",
        str(report.blocks_before),
        str(report.blocks_during),
        str(report.blocks_after),
        f"{report.rate_before_per_min:.1f}",
        f"{report.rate_during_per_min:.1f}",
        f"{report.kept:.0%}",
    )


def attack_markdown(attacks: Sequence[tuple[str, AttackReport]]) -> str:
    """Blocks before, during and after each run's attack window, and the rate kept."""
    return markdown_table(ATTACK_COLUMNS, (attack_row(e, r) for e, r in attacks))
