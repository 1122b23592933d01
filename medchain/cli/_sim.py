"""`medchain sim`: run the consensus engines in the deterministic simulator."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import Progress

from medchain.cli._common import MAX_INT, console, reports_errors
from medchain.consensus import EngineKind
from medchain.sim import (
    Byzantine,
    Scenario,
    nominal_block_ms,
    plot,
    plot_sweep,
    run_with_attack,
    simulate,
    summary_table,
    sweep,
)
from medchain.types import MedchainError

MAX_NODES = 1_000
"""More validators than any network medchain is meant for, and still a run that ends."""
MAX_BLOCKS = 1_000_000
MAX_MS = 3_600_000
"""An hour: longer than any latency, pause or timeout worth simulating."""
PPM = 1_000_000


def _engines(text: str) -> list[EngineKind]:
    try:
        engines = [EngineKind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        engines = []
    if not engines:
        raise MedchainError(f"unknown engine in {text!r}; use pbft, afbft or dpos")
    return engines


def _byzantine(text: str | None, nodes: int) -> tuple[tuple[Byzantine, int], ...]:
    if text is None:
        return ()
    roles = []
    for part in text.split(","):
        name, _, count = part.partition(":")
        try:
            kind, number = Byzantine(name.strip()), int(count.strip() or "1")
        except ValueError:
            number = 0
        if number < 1:
            kinds = ", ".join(b.value for b in Byzantine)
            raise MedchainError(
                f"bad --byzantine {part!r}; use KIND:COUNT with KIND in {kinds} and COUNT >= 1"
            )
        roles.append((kind, number))
    if sum(number for _, number in roles) > nodes:
        raise MedchainError(f"--byzantine {text!r} names more nodes than the {nodes} simulated")
    return tuple(roles)


def _sweep_nodes(text: str) -> list[int]:
    key, _, values = text.partition("=")
    if key.strip() != "nodes":
        raise MedchainError("only --sweep nodes=4,7,10 is supported")
    try:
        counts = [int(v) for v in values.split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or not all(1 <= n <= MAX_NODES for n in counts):
        raise MedchainError(
            f"bad node counts in {text!r}; give counts from 1 to {MAX_NODES}, e.g. nodes=4,7,10"
        )
    return counts


@reports_errors
def sim(
    consensus: Annotated[
        str, typer.Option(help="pbft, afbft, dpos (comma-separated with --sweep)")
    ] = "pbft",
    nodes: Annotated[int, typer.Option(min=1, max=MAX_NODES, help="Validators.")] = 19,
    blocks: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_BLOCKS,
            help="Blocks to commit (with --attack: nominal block times to run).",
        ),
    ] = 100,
    seed: Annotated[int, typer.Option(min=0, max=MAX_INT, help="Seed: same seed, same run.")] = 1,
    latency: Annotated[int, typer.Option(min=0, max=MAX_MS, help="Link latency (ms).")] = 50,
    jitter: Annotated[int, typer.Option(min=0, max=MAX_MS, help="Link jitter (± ms).")] = 10,
    loss: Annotated[int, typer.Option(min=0, max=PPM, help="Message loss, parts per million.")] = 0,
    bandwidth: Annotated[
        int, typer.Option(min=0, max=MAX_INT, help="Bytes/s per link (0 = unlimited).")
    ] = 0,
    cpu_us: Annotated[
        int, typer.Option(min=0, max=MAX_MS * 1000, help="Processing per received message (µs).")
    ] = 100,
    block_interval: Annotated[
        int, typer.Option(min=0, max=MAX_MS, help="Pause between blocks (ms).")
    ] = 1_000,
    round_timeout: Annotated[
        int, typer.Option(min=1, max=MAX_MS, help="Round 0 timeout (ms).")
    ] = 2_000,
    attack: Annotated[str | None, typer.Option(help="'predictive': paper 000's attack.")] = None,
    attack_k: Annotated[
        int, typer.Option(min=1, max=MAX_NODES, help="Nodes the attacker holds offline at once.")
    ] = 6,
    attack_from: Annotated[
        int,
        typer.Option(
            min=0, max=MAX_BLOCKS, help="Attack starts at this block of the nominal schedule."
        ),
    ] = 30,
    attack_to: Annotated[
        int,
        typer.Option(
            min=0, max=MAX_BLOCKS, help="Attack ends at this block of the nominal schedule."
        ),
    ] = 60,
    attack_reaction: Annotated[
        int,
        typer.Option(min=0, max=MAX_MS, help="Attacker's reaction time to what it sees (ms)."),
    ] = 1_000,
    byzantine: Annotated[
        str | None, typer.Option(help="e.g. equivocate:1,silent:1,forge:1,replay:1,twin:1")
    ] = None,
    sweep_spec: Annotated[str | None, typer.Option("--sweep", help="nodes=4,7,10,13,16,19")] = None,
    plot_path: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG here.", dir_okay=False)
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Simulate PBFT, AFBFT or DPoS+PBFT on a seeded virtual network (paper 000's experiments)."""
    engines = _engines(consensus)
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
        byzantine=_byzantine(byzantine, nodes),
    )
    if sweep_spec is not None:
        counts = _sweep_nodes(sweep_spec)
        for count in counts:
            _byzantine(byzantine, count)  # every run of the sweep holds its Byzantine nodes
        with Progress(console=console, transient=True, disable=as_json) as bar:
            task = bar.add_task("sweep", total=len(engines) * len(counts))

            def step(label: str) -> None:
                bar.update(task, advance=1, description=label)

            results = sweep(base, engines, counts, step)
        _report(results, as_json, "Sweep over validator counts")
        if plot_path:
            plot_sweep(
                results, plot_path, "medchain consensus: validators vs block time, latency, traffic"
            )
            console.print(f"plot written to {plot_path}")
        return
    if attack is not None and attack != "predictive":
        raise MedchainError(f"unknown attack {attack!r}; the simulator knows 'predictive'")
    results, reports = [], []
    for engine in engines:
        scenario = dataclasses.replace(base, engine=engine)
        if attack:
            result, report = run_with_attack(
                scenario, attack_from, attack_to, attack_k, attack_reaction
            )
            reports.append((engine, report))
        else:
            result = simulate(scenario)
        results.append(result)
    _report(results, as_json, "Simulated consensus", reports)
    if plot_path:
        shade = [(r.window_start_ms, r.window_end_ms) for _, r in reports[:1]]
        plot(results, plot_path, shade=shade, title="medchain consensus")
        console.print(f"plot written to {plot_path}")


def _report(results: list, as_json: bool, title: str, reports: list | None = None) -> None:  # type: ignore[type-arg]
    if as_json:
        payload = {
            "runs": [
                {
                    **dataclasses.asdict(r.summary()),
                    "seed": r.seed,
                    "trace_hash": r.trace_hash.hex(),
                    "safety_violations": list(r.safety_violations()),
                }
                for r in results
            ],
            "attack": [
                {"engine": e.value, **dataclasses.asdict(rep), "kept": rep.kept}
                for e, rep in (reports or [])
            ],
        }
        print(json.dumps(payload, indent=2))
        return
    console.print(summary_table(results, title))
    for engine, rep in reports or []:
        window = f"{rep.window_start_ms / 1000:.0f}-{rep.window_end_ms / 1000:.0f} s"
        counts = f"{rep.blocks_before} before, {rep.blocks_during} during, {rep.blocks_after} after"
        rates = (
            f"{rep.rate_during_per_min:.1f} blocks/min under attack vs "
            f"{rep.rate_before_per_min:.1f} before ({rep.kept:.0%} kept)"
        )
        console.print(f"{engine.value}: attack window {window}: blocks {counts}; {rates}")
    violations = [r for r in results if r.safety_violations()]
    if violations:
        raise MedchainError(f"safety violated in {len(violations)} run(s)")


__all__ = ["nominal_block_ms", "sim"]
