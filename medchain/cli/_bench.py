"""`medchain bench …`: run a benchmark and print its table."""

from __future__ import annotations

import dataclasses
import json
import signal
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from medchain.app import MAX_DEVICES_PER_PATIENT
from medchain.bench import (
    Report,
    SoakPlan,
    app_report,
    fhir_report,
    flood_json,
    flood_report,
    forged_report,
    gateway_report,
    growth_report,
    latency_report,
    ledger_report,
    network_report,
    node_usage_report,
    ring_report,
    run_app_bench,
    run_fhir_bench,
    run_flood_bench,
    run_forged_cost,
    run_gateway_bench,
    run_growth_bench,
    run_ledger_bench,
    run_network_bench,
    run_ring_bench,
    run_search_bench,
    run_sim_bench,
    run_snapshot_bench,
    run_soak,
    run_state_bench,
    run_state_disk_bench,
    search_report,
    sim_report,
    snapshot_report,
    soak_json,
    soak_reports,
    state_disk_report,
    state_report,
)
from medchain.cli._common import console, reports_errors
from medchain.cli._options import (
    MAX_COUNT,
    MAX_MS,
    MAX_NODES,
    MAX_SECONDS,
    MAX_VALIDATORS,
    BlockIntervalOption,
    ConsensusOption,
    JsonOption,
    JsonTablesOption,
    ValidatorsOption,
    count,
)
from medchain.consensus import EngineKind
from medchain.crypto import MAX_RING_SIZE
from medchain.node import signals_raise
from medchain.types import MedchainError

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _counts(text: str, option: str, low: int, high: int = MAX_COUNT) -> tuple[int, ...]:
    """A comma-separated list of whole numbers from `low` to `high`, or a clear error."""
    try:
        counts = tuple(int(part) for part in text.split(","))
    except ValueError:
        counts = ()
    if not counts or not all(low <= n <= high for n in counts):
        raise MedchainError(
            f"{option} {text[:40]!r} is not a comma-separated list of whole numbers from "
            f"{low} to {high:,}, e.g. {option} {low},{2 * low}"
        )
    return counts


def _engine(name: str) -> None:
    try:
        EngineKind(name)
    except ValueError:
        known = ", ".join(k.value for k in EngineKind)
        raise MedchainError(f"unknown consensus engine {name!r}; use {known}") from None


def _store_directory(help_text: str) -> Any:
    """`--store DIR`: where the benchmarks on disk keep their stores of N entries."""
    return typer.Option("--store", help=help_text, file_okay=False)


@contextmanager
def stage_progress(disabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar per stage of a long benchmark, fed by `progress(stage, done, total)`."""
    tasks: dict[str, TaskID] = {}
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disabled,
    ) as bar:

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done)

        yield progress


def _print(*reports: Report) -> None:
    for report in reports:
        table = Table(*report.columns, title=report.title)
        for row in report.rows:
            table.add_row(*row)
        console.print(table)
        for note in report.notes:
            console.print(note, highlight=False)


def _print_json(result: Any) -> None:
    print(json.dumps(result, indent=2))


@reports_errors
def ledger(
    txs: Annotated[int, count("Signed transfers to validate and apply.")] = 20_000,
    block_size: Annotated[int, count("Transactions per block.")] = 1_000,
    seal_iterations: Annotated[int, count("Records to encrypt+wrap.")] = 2_000,
    as_json: JsonOption = False,
) -> None:
    """Transaction validate+apply rate on one core, sealed-block rate, record encryption time."""
    with stage_progress(disabled=as_json) as progress:
        result = run_ledger_bench(txs, block_size, seal_iterations, progress)
    if as_json:
        _print_json(dataclasses.asdict(result))
    else:
        _print(ledger_report(result))


@reports_errors
def sim_speed(
    nodes: Annotated[int, count("Validators.", high=MAX_NODES)] = 4,
    blocks: Annotated[int, count("Empty blocks per run.")] = 300,
    as_json: JsonOption = False,
) -> None:
    """Simulated blocks per wall-clock second, per engine, with the real ledger."""
    speeds = run_sim_bench(nodes, blocks)
    if as_json:
        _print_json([{**dataclasses.asdict(s), "blocks_per_s": s.blocks_per_s} for s in speeds])
    else:
        _print(sim_report(speeds, nodes))


@reports_errors
def state_root(
    sizes: Annotated[
        str, typer.Option(help="State sizes (entries), comma-separated.")
    ] = "10000,100000,1000000",
    changes: Annotated[int, count("New entries each block writes.")] = 400,
    blocks: Annotated[int, count("Blocks timed per size.")] = 5,
    store: Annotated[
        Path | None,
        _store_directory(
            "Measure the state on disk instead: a chain store per size in this "
            "directory (built in bulk, kept for the next run), opened by a fresh process "
            "with the default cache."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A block's state root cost as the state grows: the two-tier tree against one tree
    over every entry (the definition it replaced); with --store, on disk: memory, time
    to the first commit, and a block's state root cost."""
    counts = _counts(sizes, "--sizes", 1)
    with stage_progress(disabled=as_json) as progress:
        if store is None:
            timings: Sequence[Any] = run_state_bench(counts, changes, blocks, progress)
        else:
            timings = run_state_disk_bench(store, counts, changes, blocks, progress)
    if as_json:
        _print_json([dataclasses.asdict(t) for t in timings])
    elif store is None:
        _print(state_report(timings, changes))
    else:
        _print(state_disk_report(timings, changes))


@reports_errors
def snapshot(
    entries: Annotated[int, count("State entries in the served store.")] = 10_000_000,
    store: Annotated[
        Path | None,
        _store_directory(
            "Keep the served store in this directory (built in bulk once, reused by the "
            "next run; the same stores as `bench state --store`); default: a temporary "
            "one, removed after the run."
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Snapshot sync: a store of --entries makes a snapshot and serves it over loopback
    P2P to an empty node, which joins with the node's join code: the snapshot's time,
    bytes and chunks, the join's time and bytes received, the joined state root checked,
    and the joining process's peak memory."""
    kept = tempfile.TemporaryDirectory(prefix="snapbench-") if store is None else nullcontext(store)
    with kept as directory, stage_progress(disabled=as_json) as progress:
        timing = run_snapshot_bench(Path(directory), entries, progress)
    if as_json:
        _print_json(dataclasses.asdict(timing))
    else:
        _print(snapshot_report(timing))


@reports_errors
def state_growth(
    batches: Annotated[int, count("Batches (seconds of load) committed per load.")] = 60,
    as_json: JsonOption = False,
) -> None:
    """Bytes each edge-gateway reading adds to the committed state and to the disk, at
    the district's load and at 5,000 readings/s, and so per day."""
    with stage_progress(disabled=as_json) as progress:
        results = run_growth_bench(batches=batches, progress=progress)
    if as_json:
        _print_json([dataclasses.asdict(g) for g in results])
    else:
        _print(growth_report(results))


@reports_errors
def ring(
    sizes: Annotated[str, typer.Option(help="Ring sizes, comma-separated.")] = "11,64",
    runs: Annotated[int, count("Signatures per size.")] = 200,
    forged: Annotated[
        int,
        count(
            "Also admit this many forged 64-member ring transactions, checked on the "
            "event loop's thread as before and in the verifier's workers as now: the CPU "
            "each costs the loop and the node.",
            low=0,
        ),
    ] = 0,
    as_json: JsonOption = False,
) -> None:
    """bLSAG ring signature sign and verify times (ristretto255, libsodium)."""
    timings = run_ring_bench(_counts(sizes, "--sizes", 2, MAX_RING_SIZE), runs)
    cost = run_forged_cost(64, forged) if forged else None
    if as_json:
        rows = [dataclasses.asdict(t) for t in timings]
        _print_json({"timings": rows, "forged": dataclasses.asdict(cost)} if cost else rows)
        return
    _print(ring_report(timings))
    if cost is not None:
        _print(forged_report(cost))


def flood(
    seconds: Annotated[float, count("How long the flood lasts.", high=MAX_SECONDS)] = 20,
    validators: Annotated[int, count("Validators.", high=7)] = 1,
    attackers: Annotated[int, count("Attacker processes.", high=16)] = 2,
    batch: Annotated[int, count("Forged transactions per request.", high=1_000)] = 16,
    ring_size: Annotated[int, count("Members of each ring.", low=2, high=64)] = 64,
    as_json: JsonOption = False,
) -> None:
    """Flood a fresh devnet's first node with forged anonymous transactions (from
    127.0.0.2, ignoring Retry-After) while an honest client submits transfers: how the
    node answers, what it commits, what the flood costs it."""
    result = run_flood_bench(
        validators=validators,
        duration_s=seconds,
        attackers=attackers,
        batch=batch,
        ring_size=ring_size,
    )
    if as_json:
        print(flood_json(result))
    else:
        _print(flood_report(result))


@reports_errors
def search_speed(
    records: Annotated[int, count("Records to index.")] = 10_000,
    keywords: Annotated[int, count("Keywords per record.")] = 10,
    block_size: Annotated[int, count("Index transactions per block.")] = 1_000,
    epochs: Annotated[
        int, count("Indexing sessions, each ended by a search of every keyword.")
    ] = 10,
    queries: Annotated[int, count("Timed searches per keyword.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """Encrypted keyword search: index entries per record, search latency by result size."""
    with stage_progress(disabled=as_json) as progress:
        result = run_search_bench(records, keywords, block_size, epochs, queries, progress=progress)
    if as_json:
        _print_json(dataclasses.asdict(result))
    else:
        _print(search_report(result))


@reports_errors
def fhir(
    records: Annotated[int, count("Records of the one patient.")] = 10_000,
    page: Annotated[int, count("Results per page (_count).", high=1000)] = 50,
    queries: Annotated[int, count("Timed searches.")] = 200,
    as_json: JsonOption = False,
) -> None:
    """The FHIR facade: search by patient and code (p50/p95), bulk export throughput."""
    with stage_progress(disabled=as_json) as progress:
        result = run_fhir_bench(records, page, queries, progress=progress)
    if as_json:
        _print_json({**dataclasses.asdict(result), "export_per_s": result.export_per_s})
    else:
        _print(fhir_report(result))


@reports_errors
def web_app(
    records: Annotated[int, count("Records of the one patient.")] = 1_000,
    readings: Annotated[int, count("Readings of the patient's band over a month.")] = 100_000,
    blocks: Annotated[int, count("Explorer blocks timed.", high=1000)] = 10,
    as_json: JsonOption = False,
) -> None:
    """The web app's pages in headless Chromium: first load, a timeline, a vitals chart,
    and the explorer's delay from a block to its row on the open page."""
    with stage_progress(disabled=as_json) as progress:
        result = run_app_bench(records, readings, blocks, progress=progress)
    if as_json:
        _print_json(dataclasses.asdict(result))
    else:
        _print(app_report(result))


@reports_errors
def gateway(
    patients: Annotated[int, count("Patients, each with a bedside hub.")] = 200,
    per_patient: Annotated[int, count("Devices per patient.", high=MAX_DEVICES_PER_PATIENT)] = 5,
    rate: Annotated[int, count("Readings per device per minute.")] = 300,
    duration: Annotated[float, count("Seconds of load.", high=MAX_SECONDS)] = 30,
    tick_ms: Annotated[int, count("How often a hub forwards its readings.", high=MAX_MS)] = 1_000,
    consensus: ConsensusOption = "afbft",
    validators: ValidatorsOption = 4,
    block_interval_ms: BlockIntervalOption = 500,
    as_json: JsonTablesOption = False,
) -> None:
    """Readings per second one edge gateway carries into the chain, and the delay from
    device to committed batch, on a fresh devnet of node processes on 127.0.0.1."""
    _engine(consensus)  # a clear error before any process starts
    with stage_progress(disabled=as_json) as progress:
        result = run_gateway_bench(
            validators=validators,
            consensus=consensus,
            patients=patients,
            per_patient=per_patient,
            rate=rate,
            duration_s=duration,
            tick_ms=tick_ms,
            block_interval_ms=block_interval_ms,
            progress=progress,
        )
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    _print(gateway_report(result, per_patient))
    for reason, number in result.refused.items():
        console.print(f"[yellow]{number:,} refused[/]: {reason}", highlight=False)


@reports_errors
def network(
    ctx: typer.Context,
    clients: Annotated[int, count("Concurrent clients.")] = 100,
    duration: Annotated[float, count("Seconds per phase.", high=MAX_SECONDS)] = 30,
    consensus: ConsensusOption = "pbft",
    validators: ValidatorsOption = 4,
    rate: Annotated[int, count("Record uploads and queries per second.")] = 500,
    window: Annotated[int, count("Transfers each client keeps in flight.")] = 60,
    block_interval_ms: BlockIntervalOption = 500,
    anchoring: Annotated[
        bool,
        typer.Option(help="Anchor checkpoints on the devnet's own Ganache, and report the cost."),
    ] = False,
    ceiling: Annotated[
        bool,
        typer.Option(
            help="First measure the one-core validate+apply rate (a few seconds) and report "
            "the throughput as a share of cores x that rate / validators."
        ),
    ] = True,
    as_json: JsonTablesOption = False,
) -> None:
    """Sustained tx/s and commit latency, then record upload and query latency with
    concurrent clients, on a fresh devnet of node processes on 127.0.0.1; what each
    node process used, per phase."""
    # every benchmark here may run node processes: a SIGTERM (`timeout`, `kill`, a CI
    # runner) unwinds it like Ctrl-C, so they are stopped rather than left running
    ctx.with_resource(signals_raise(_STOP_SIGNALS, lambda signum: SystemExit(128 + signum)))
    if ctx.invoked_subcommand is not None:
        return
    _engine(consensus)  # a clear error before any process starts
    with stage_progress(disabled=as_json) as progress:
        result = run_network_bench(
            validators=validators,
            consensus=consensus,
            clients=clients,
            duration_s=duration,
            rate=rate,
            window=window,
            block_interval_ms=block_interval_ms,
            progress=progress,
            anchoring=anchoring,
            ceiling=ceiling,
        )
    if as_json:
        _print_json(dataclasses.asdict(result))
        return
    _print(network_report(result), latency_report(result), node_usage_report(result))
    for reason, number in result.errors.items():
        console.print(f"[yellow]{number:,} failed[/]: {reason}", highlight=False)


@reports_errors
def soak(
    minutes: Annotated[
        float, count("How long the load runs, in minutes.", low=0.1, high=MAX_SECONDS / 60)
    ] = 60,
    rate: Annotated[int, count("Readings per second from the whole fleet.")] = 100,
    patients: Annotated[
        int, count("Patients, each with a bedside hub and 5 devices.", high=100_000)
    ] = 100,
    sample_s: Annotated[float, count("Seconds between samples of every process.", high=3_600)] = 60,
    consensus: ConsensusOption = "afbft",
    validators: ValidatorsOption = 4,
    committee: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=MAX_VALIDATORS,
            help="DPoS: block producers elected each epoch (default: the chain's); the "
            "other validators are ordinary nodes, compared with them per role.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Also write every round of samples to this file as a JSON line, as it is "
            "taken (a run cut short keeps its data).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    as_json: JsonTablesOption = False,
) -> None:
    """A long run of one edge gateway into a fresh devnet at a steady load, every
    process's memory and CPU sampled as it goes: the memory slope once the run has
    settled, and the readings lost (target: under 1 MB a minute, none lost); block
    producers against ordinary nodes (CPU and memory per role)."""
    _engine(consensus)  # a clear error before any process starts
    plan = SoakPlan(
        minutes,
        rate,
        patients,
        sample_s,
        consensus=consensus,
        validators=validators,
        committee=committee,
    )
    plan.check()
    with (
        out.open("w", encoding="utf-8") if out is not None else nullcontext() as lines,
        stage_progress(disabled=as_json) as progress,
    ):
        show = None if as_json else _show_sample
        result = run_soak(plan, out=lines, progress=progress, on_sample=show)
    if as_json:
        _print_json(soak_json(result))
    else:
        _print(*soak_reports(result))


def _show_sample(sample: dict[str, Any]) -> None:
    """One line per round of samples, above the progress bar."""
    memory = ", ".join(
        f"{name} {usage['rss_bytes'] / 1e6:,.0f}" for name, usage in sample["processes"].items()
    )
    height = max(sample["heights"].values(), default=0)
    console.print(
        f"{sample['t_s'] / 60:6.1f} min  height {height:,}  committed {sample['committed']:,}"
        f"  RSS MB: {memory}",
        highlight=False,
    )
