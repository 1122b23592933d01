"""`medchain sim`: run the consensus engines in the deterministic simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from medchain.cli._common import console, reports_errors
from medchain.cli._options import MAX_INT, MAX_MS, MAX_NODES, JsonOption, count
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
    run_sweep,
    summary_table,
)
from medchain.types import MedchainError

MAX_BLOCKS = 1_000_000
PPM = 1_000_000


@reports_errors
def sim(
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
        int, count("Processing per received message (µs).", low=0, high=MAX_MS * 1000)
    ] = 100,
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
    byzantine: Annotated[
        str | None, typer.Option(help="e.g. equivocate:1,silent:1,forge:1,replay:1,twin:1")
    ] = None,
    sweep_spec: Annotated[str | None, typer.Option("--sweep", help="nodes=4,7,10,13,16,19")] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG here.", dir_okay=False)
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Simulate PBFT, AFBFT or DPoS+PBFT on a seeded virtual network (paper 000's experiments)."""
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
        block_interval_ms=block_interval,
        round_timeout_ms=round_timeout,
        byzantine=parse_byzantine(byzantine, nodes),
    )
    if sweep_spec is not None:
        counts = parse_sweep(sweep_spec, MAX_NODES)
        for node_count in counts:
            parse_byzantine(byzantine, node_count)  # every run holds its Byzantine nodes
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("sweep", total=len(engines) * len(counts))
            runs = run_sweep(
                base, engines, counts, lambda label: bar.update(task, advance=1, description=label)
            )
        _report(runs, as_json, "Sweep over validator counts")
        if plot_path:
            title = "medchain consensus: validators vs block time, latency, traffic"
            plot_sweep(runs.results, plot_path, title)
            console.print(f"plot written to {plot_path}")
        return
    if attack is not None and attack != "predictive":
        raise MedchainError(f"unknown attack {attack!r}; the simulator knows 'predictive'")
    window = AttackWindow(attack_from, attack_to, attack_k, attack_reaction) if attack else None
    runs = run_engines(base, engines, window)
    _report(runs, as_json, "Simulated consensus")
    if plot_path:
        shade = [(r.window_start_ms, r.window_end_ms) for _, r in runs.attacks[:1]]
        plot(runs.results, plot_path, shade=shade, title="medchain consensus")
        console.print(f"plot written to {plot_path}")


def _report(runs: SimRuns, as_json: bool, title: str) -> None:
    if as_json:
        print(json.dumps(runs.to_json(), indent=2))
        return
    console.print(summary_table(runs.results, title))
    for line in runs.attack_lines():
        console.print(line)
    runs.check_safety()
