"""`medchain sim`: run the consensus engines in the deterministic simulator."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from medchain.cli._bench import _counts
from medchain.cli._common import console, err_console, reports_errors
from medchain.cli._options import MAX_INT, MAX_MS, MAX_NODES, JsonOption, count
from medchain.consensus import EngineKind
from medchain.sim import (
    AttackWindow,
    Scenario,
    SimRuns,
    parse_byzantine,
    parse_engines,
    parse_sweep,
    plot,
    plot_sweep,
    run_engines,
    run_reactions,
    run_sweep,
    summary_table,
)
from medchain.types import MedchainError

MAX_BLOCKS = 1_000_000
PPM = 1_000_000
MarkdownOption = Annotated[
    bool,
    typer.Option("--markdown", help="Print Markdown tables (as the docs embed them)."),
]
PlotOption = Annotated[
    Path | None, typer.Option("--plot", help="Write a PNG here.", dir_okay=False)
]


def output_format(as_json: bool, as_markdown: bool) -> str:
    """`json`, `markdown` or `table`: one of them, and what a run prints."""
    if as_json and as_markdown:
        raise MedchainError("give --json or --markdown, not both")
    return "json" if as_json else "markdown" if as_markdown else "table"


@contextmanager
def progress_bar(label: str, total: int, fmt: str) -> Iterator[Callable[[str], None]]:
    """A bar on stderr, shown only over a table (JSON and Markdown are read by programs);
    the callback advances it by one step, naming the step."""
    with Progress(console=err_console, transient=True, disable=fmt != "table") as bar:
        task = bar.add_task(label, total=total)
        yield lambda step: bar.update(task, advance=1, description=step)


def plot_written(path: Path) -> None:
    """Said on stderr, so that stdout carries only the JSON or Markdown asked for."""
    err_console.print(f"plot written to {path}", soft_wrap=True)


@reports_errors
def sim(
    ctx: typer.Context,
    consensus: Annotated[
        str, typer.Option(help="pbft, afbft, dpos (comma-separated with --sweep)")
    ] = "pbft",
    nodes: Annotated[int, count("Validators.", high=MAX_NODES)] = 19,
    blocks: Annotated[
        int, count("Blocks to commit (with --attack: nominal block times to run).", high=MAX_BLOCKS)
    ] = 100,
    seed: Annotated[int, count("Seed: same seed, same run.", low=0, high=MAX_INT)] = 1,
    latency: Annotated[int, count("Link latency (ms).", low=0, high=MAX_MS)] = 50,
    jitter: Annotated[int, count("Link jitter (± ms).", low=0, high=MAX_MS)] = 10,
    loss: Annotated[int, count("Message loss, parts per million.", low=0, high=PPM)] = 0,
    bandwidth: Annotated[int, count("Bytes/s per link (0 = unlimited).", low=0, high=MAX_INT)] = 0,
    cpu_us: Annotated[
        int,
        count(
            "Processing per received message (µs), queued first come first served "
            "(an Ed25519 check is ~40 µs here; 0: none).",
            low=0,
            high=MAX_MS * 1000,
        ),
    ] = 0,
    block_interval: Annotated[int, count("Pause between blocks (ms).", low=0, high=MAX_MS)] = 1_000,
    round_timeout: Annotated[int, count("Round 0 timeout (ms).", high=MAX_MS)] = 2_000,
    attack: Annotated[str | None, typer.Option(help="'predictive': paper 000's attack.")] = None,
    attack_k: Annotated[
        int, count("Nodes the attacker holds offline at once.", high=MAX_NODES)
    ] = 6,
    attack_from: Annotated[
        int, count("Attack starts at this block of the nominal schedule.", low=0, high=MAX_BLOCKS)
    ] = 30,
    attack_to: Annotated[
        int, count("Attack ends at this block of the nominal schedule.", low=0, high=MAX_BLOCKS)
    ] = 60,
    attack_reaction: Annotated[
        int, count("Attacker's reaction time to what it sees (ms).", low=0, high=MAX_MS)
    ] = 1_000,
    attack_reactions: Annotated[
        str | None,
        typer.Option(help="Several reaction times (ms), e.g. 50,250,1000: one run for each."),
    ] = None,
    byzantine: Annotated[
        str | None, typer.Option(help="e.g. equivocate:1,silent:1,forge:1,replay:1,twin:1")
    ] = None,
    sweep_spec: Annotated[str | None, typer.Option("--sweep", help="nodes=4,7,10,13,16,19")] = None,
    plot_path: PlotOption = None,
    as_json: JsonOption = False,
    as_markdown: MarkdownOption = False,
) -> None:
    """Simulate PBFT, AFBFT or DPoS+PBFT on a seeded virtual network (paper 000's experiments)."""
    if ctx.invoked_subcommand is not None:
        return
    fmt = output_format(as_json, as_markdown)
    engines = parse_engines(consensus)
    base = Scenario(
        engine=engines[0],
        nodes=nodes,
        blocks=blocks,
        seed=seed,
        latency_ms=latency,
        jitter_ms=jitter,
        loss_ppm=loss,
        bytes_per_s=bandwidth or None,
        cpu_us_per_message=cpu_us,
        block_interval_ms=block_interval,
        round_timeout_ms=round_timeout,
        byzantine=parse_byzantine(byzantine, nodes),
    )
    if sweep_spec is not None:
        _sweep(base, engines, sweep_spec, byzantine, fmt, plot_path)
        return
    window = AttackWindow(attack_from, attack_to, attack_k, attack_reaction)
    runs = _attacked(base, engines, attack, window, attack_reactions)
    _report(runs, fmt, "Simulated consensus")
    if plot_path:
        shade = [(r.window_start_ms, r.window_end_ms) for _, r in runs.attacks[:1]]
        plot(runs.results, plot_path, shade=shade, title="medchain consensus")
        plot_written(plot_path)


def _attacked(
    base: Scenario,
    engines: list[EngineKind],
    attack: str | None,
    window: AttackWindow,
    reactions: str | None,
) -> SimRuns:
    """One run per engine: unattacked, attacked, or attacked once per reaction time."""
    if attack is not None and attack != "predictive":
        raise MedchainError(f"unknown attack {attack!r}; the simulator knows 'predictive'")
    if attack is None:
        if reactions is not None:
            raise MedchainError("--attack-reactions needs --attack predictive")
        return run_engines(base, engines)
    if reactions is None:
        return run_engines(base, engines, window)
    return run_reactions(base, engines, window, _counts(reactions, "--attack-reactions", 0, MAX_MS))


def _sweep(
    base: Scenario,
    engines: list[EngineKind],
    spec: str,
    byzantine: str | None,
    fmt: str,
    plot_path: Path | None,
) -> None:
    counts = parse_sweep(spec, MAX_NODES)
    for node_count in counts:
        parse_byzantine(byzantine, node_count)  # every run holds its Byzantine nodes
    with progress_bar("sweep", len(engines) * len(counts), fmt) as progress:
        runs = run_sweep(base, engines, counts, progress)
    _report(runs, fmt, "Sweep over validator counts")
    if plot_path:
        title = "medchain consensus: validators vs block time, latency, traffic"
        plot_sweep(runs.results, plot_path, title)
        plot_written(plot_path)


def _report(runs: SimRuns, fmt: str, title: str) -> None:
    if fmt == "json":
        print(json.dumps(runs.to_json(), indent=2))  # violations are in the JSON
        return
    if fmt == "markdown":
        print(runs.markdown())
    else:
        console.print(summary_table(runs.results, title))
        for line in runs.attack_lines():
            console.print(line)
    runs.check_safety()
