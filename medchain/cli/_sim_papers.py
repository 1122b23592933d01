"""`medchain sim catch-up` and `medchain sim bandwidth`: the figures of papers 002 and
000 that are not consensus runs, each as a table, Markdown or JSON, and a plot."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from medchain.cli._bench import _counts
from medchain.cli._common import console, reports_errors
from medchain.cli._options import MAX_INT, MAX_MS, MAX_NODES, JsonOption, count
from medchain.cli._sim import (
    MarkdownOption,
    PlotOption,
    output_format,
    plot_written,
    progress_bar,
)
from medchain.sim import (
    KB,
    CatchUpSettings,
    Scenario,
    bandwidth_figures,
    bandwidth_headers,
    catch_up_markdown,
    catch_up_rich,
    catch_up_table,
    markdown_table,
    measure_traffic,
    parse_engines,
    plot_bandwidth,
    plot_catch_up,
    rich_table,
)
from medchain.types import MedchainError

MAX_RUNS = 10_000_000
MAX_Z = 100


def _shares(text: str) -> tuple[int, ...]:
    shares = _counts(text, "--q", 1, 99)
    if 50 in shares:
        raise MedchainError("--q 50: an even race has no expected end; use 49 or 51")
    return shares


@reports_errors
def catch_up(
    q: Annotated[str, typer.Option("--q", help="Attacker's share of blocks, in %.")] = "10,30",
    max_z: Annotated[int, count("Confirmations z from 0 to this.", low=0, high=MAX_Z)] = 10,
    runs: Annotated[int, count("Seeded races per (q, z).", high=MAX_RUNS)] = 10_000,
    seed: Annotated[int, count("Seed: same seed, same figures.", low=0, high=MAX_INT)] = 1,
    anchor_every: Annotated[int, count("Checkpoint interval (blocks).", high=MAX_INT)] = 5,
    anchor_delay: Annotated[
        int, count("Blocks until a checkpoint's anchor is final.", low=0, high=MAX_INT)
    ] = 1,
    plot_path: PlotOption = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
) -> None:
    """Paper 002: an attacker mining a rewrite in private catches up after z
    confirmations: Nakamoto's formula, the exact race, seeded runs, and the anchors."""
    fmt = output_format(as_json, as_markdown)
    settings = CatchUpSettings(_shares(q), max_z, runs, seed, anchor_every, anchor_delay)
    with progress_bar("catch-up", len(settings.shares_pct) * (max_z + 1), fmt) as progress:
        rows = catch_up_table(settings, progress)
    if fmt == "json":
        print(json.dumps([row.to_json() for row in rows], indent=2))
    elif fmt == "markdown":
        print(catch_up_markdown(rows, settings))
    else:
        console.print(catch_up_rich(rows, settings))
    if plot_path:
        plot_catch_up(rows, plot_path)
        plot_written(plot_path)


@reports_errors
def bandwidth(
    consensus: Annotated[str, typer.Option(help="pbft, afbft, dpos, comma-separated.")] = "pbft",
    nodes: Annotated[str, typer.Option(help="Node counts, comma-separated.")] = "4,7,10,13,16,19",
    block_kb: Annotated[
        str, typer.Option(help="Block bodies in KB (1,000 bytes), comma-separated.")
    ] = "0,100,1000",
    link_mbps: Annotated[int, count("The link to size against (Mbit/s).", high=MAX_INT)] = 100,
    blocks: Annotated[int, count("Empty blocks each run measures.", low=2, high=MAX_RUNS)] = 20,
    block_interval: Annotated[int, count("Pause between blocks (ms).", low=0, high=MAX_MS)] = 1_000,
    seed: Annotated[int, count("Seed: same seed, same run.", low=0, high=MAX_INT)] = 1,
    plot_path: PlotOption = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
) -> None:
    """Paper 000: consensus traffic per node against block size and node count, and the
    link on which the busiest node's traffic is 35-40 % of the bandwidth."""
    fmt = output_format(as_json, as_markdown)
    engines = parse_engines(consensus)
    counts = _counts(nodes, "--nodes", 2, MAX_NODES)
    sizes = [kb * KB for kb in _counts(block_kb, "--block-kb", 0, MAX_INT // KB)]
    base = Scenario(blocks=blocks, seed=seed, block_interval_ms=block_interval)
    with progress_bar("bandwidth", len(engines) * len(counts), fmt) as progress:
        measured = measure_traffic(base, engines, counts, progress)
    figures = bandwidth_figures(measured, sizes, link_mbps)
    headers, rows = bandwidth_headers(link_mbps), [f.cells() for f in figures]
    if fmt == "json":
        print(json.dumps([dataclasses.asdict(f) for f in figures], indent=2))
    elif fmt == "markdown":
        print(markdown_table(headers, rows))
    else:
        console.print(rich_table("Consensus traffic per node (paper 000's sizing)", headers, rows))
    if plot_path:
        plot_bandwidth(measured, sizes, plot_path)
        plot_written(plot_path)
