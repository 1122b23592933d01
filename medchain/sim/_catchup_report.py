"""The catch-up figures as a `rich` table, Markdown and a PNG (paper 002's figure 7:
the probability against z, one panel per attacker share)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from medchain.sim._catchup import CatchUpRow, CatchUpSettings, rows_by_share
from medchain.sim._markdown import markdown_table
from medchain.sim._report import new_figure, rich_table, save_figure


def catch_up_headers(settings: CatchUpSettings) -> tuple[str, ...]:
    anchored = (
        f"with anchors (every {settings.anchor_every} blocks, final {settings.anchor_delay} later)"
    )
    return (
        "q",
        "z",
        "Nakamoto's formula",
        "exact",
        f"simulated ({settings.runs:,} runs)",
        anchored,
        "refused by the anchor check",
    )


def catch_up_cells(row: CatchUpRow) -> tuple[str, ...]:
    return (
        f"{row.q_pct / 100:.1f}",
        str(row.z),
        f"{row.nakamoto:.7f}",
        f"{float(row.exact):.7f}",
        f"{row.simulated:.4f}",
        f"{row.with_anchors:.4f}",
        f"{row.refused:,}",
    )


def catch_up_markdown(rows: Sequence[CatchUpRow], settings: CatchUpSettings) -> str:
    return markdown_table(catch_up_headers(settings), (catch_up_cells(r) for r in rows))


def catch_up_rich(rows: Sequence[CatchUpRow], settings: CatchUpSettings) -> Table:
    title = "Attacker catch-up probability (paper 002, Nakamoto section 11)"
    return rich_table(title, catch_up_headers(settings), (catch_up_cells(r) for r in rows))


def plot_catch_up(rows: Sequence[CatchUpRow], path: str | Path) -> Path:
    """P against z on a log scale: the formula, the exact race, the seeded runs, and
    the runs that still win with anchors (a win rate of 0 is not drawn on a log axis)."""
    by_share = rows_by_share(rows)
    fig = new_figure(6 * len(by_share), 4)
    axes = fig.subplots(1, len(by_share), squeeze=False)[0]
    for ax, (q_pct, share) in zip(axes, by_share.items(), strict=True):
        zs = [r.z for r in share]
        ax.plot(zs, [r.nakamoto for r in share], marker="o", label="Nakamoto's formula")
        ax.plot(zs, [float(r.exact) for r in share], linestyle="--", label="exact")
        ax.plot(zs, [r.simulated or None for r in share], "x", label="simulated")
        ax.plot(zs, [r.with_anchors or None for r in share], "s", label="with anchors")
        ax.set_yscale("log")
        ax.set_xlabel("z (confirmations)")
        ax.set_ylabel("attacker catches up")
        ax.set_title(f"q = {q_pct / 100:.1f}")
        ax.legend()
    return save_figure(fig, path, "medchain: paper 002's block-forging attack")
