"""Runs side by side: a `rich` table of their figures and a PNG of their progress.

matplotlib is imported only when a plot is drawn, and only its Agg canvas is used
(no pyplot, no display, no global backend switch), so the simulator itself does not
need it and a plot never opens a window.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table

from medchain.sim._metrics import KB, SimResult, SimSummary

COLUMNS = (
    "engine",
    "nodes",
    "blocks",
    "mean block time (ms)",
    "messages/block",
    "KB/block",
    "KB/s",
    "messages/s",
    "view changes",
    "latency p50 (ms)",
    "latency p99 (ms)",
)


def _fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    return f"{value:,.{digits}f}"


def summary_row(summary: SimSummary) -> tuple[str, ...]:
    return (
        summary.engine,
        str(summary.nodes),
        str(summary.blocks),
        _fmt(summary.mean_block_time_ms, 0),
        _fmt(summary.messages_per_block),
        _fmt(summary.kb_per_block, 2),
        _fmt(summary.kb_per_s, 2),
        _fmt(summary.messages_per_s),
        str(summary.view_changes),
        _fmt(summary.latency_p50_ms),
        _fmt(summary.latency_p99_ms),
    )


def rich_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """A table with the first column left-aligned and the figures right-aligned."""
    table = Table(title=title)
    for i, name in enumerate(headers):
        table.add_column(name, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def summary_table(
    runs: Sequence[SimSummary | SimResult], title: str = "Simulated consensus"
) -> Table:
    """One row per run (KB are thousands of bytes; latency is commit time minus the
    block's header time over honest nodes)."""
    rows = (summary_row(r.summary() if isinstance(r, SimResult) else r) for r in runs)
    return rich_table(title, COLUMNS, rows)


def new_figure(width: float = 13, height: float = 4) -> Any:
    """A matplotlib Figure on the Agg canvas (no pyplot, no window, no global state)."""
    figure_mod: Any = importlib.import_module("matplotlib.figure")
    agg: Any = importlib.import_module("matplotlib.backends.backend_agg")
    fig = figure_mod.Figure(figsize=(width, height), layout="constrained")
    agg.FigureCanvasAgg(fig)
    return fig


def save_figure(fig: Any, path: str | Path, title: str = "") -> Path:
    if title:
        fig.suptitle(title)
    out = Path(path)
    fig.savefig(out, dpi=100)
    return out


def plot(
    results: Sequence[SimResult],
    path: str | Path,
    *,
    shade: Sequence[tuple[int, int]] = (),
    title: str = "",
) -> Path:
    """Write a PNG: committed height over time per run (with `shade` windows, e.g. an
    attack, in ms), and bars of mean block time and traffic per run."""
    fig = new_figure()
    progress, block_time, traffic = fig.subplots(1, 3, width_ratios=(2, 1, 1))
    for result in results:
        points = result.height_over_time()
        last = points[-1][1] if points else 0
        xs = [result.start_ms / 1000] + [t / 1000 for t, _ in points] + [result.end_ms / 1000]
        ys = [0] + [h for _, h in points] + [last]
        progress.step(xs, ys, where="post", label=result.label or f"seed {result.seed}")
    for start_ms, end_ms in shade:
        progress.axvspan(start_ms / 1000, end_ms / 1000, color="tab:red", alpha=0.12)
    progress.set_xlabel("simulated time (s)")
    progress.set_ylabel("committed height")
    progress.legend(loc="upper left")
    labels = [r.label or f"seed {r.seed}" for r in results]
    summaries = [r.summary() for r in results]
    block_time.bar(labels, [s.mean_block_time_ms or 0.0 for s in summaries])
    block_time.set_ylabel("mean block time (ms)")
    traffic.bar(labels, [r.per_second(r.bytes_sent) / KB for r in results])
    traffic.set_ylabel("traffic (KB/s)")
    return save_figure(fig, path, title)
