"""The catch-up figures as Markdown, a console table and a plot."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from medchain.sim import (
    CatchUpSettings,
    catch_up_markdown,
    catch_up_rich,
    catch_up_table,
    plot_catch_up,
)

SETTINGS = CatchUpSettings(shares_pct=(10, 30), max_confirmations=3, runs=300)


def test_markdown_has_a_row_per_share_and_z_with_the_formula_to_seven_places() -> None:
    rows = catch_up_table(SETTINGS)
    lines = catch_up_markdown(rows, SETTINGS).splitlines()
    assert "with anchors (every 5 blocks, final 1 later)" in lines[0]
    assert len(lines) == 2 + 2 * 4
    assert lines[3].startswith("| 0.1 | 1 | 0.2045873 | 0.2000000 | ")
    assert lines[-1].startswith("| 0.3 | 3 | 0.3245841 | 0.3261600 | ")


def test_the_console_table_and_the_plot(tmp_path: Path) -> None:
    rows = catch_up_table(SETTINGS)
    console = Console(record=True, width=250)
    console.print(catch_up_rich(rows, SETTINGS))
    assert "0.2045873" in console.export_text()
    out = plot_catch_up(rows, tmp_path / "catch-up.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
