"""`medchain bench …`: run a benchmark and print its table."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from medchain.app import MAX_DEVICES_PER_PATIENT
from medchain.bench import (
    ForgedCost,
    LatencySummary,
    flood_json,
    run_flood_bench,
    run_forged_cost,
    run_gateway_bench,
    run_ledger_bench,
    run_network_bench,
    run_ring_bench,
    run_search_bench,
    run_sim_bench,
    run_state_bench,
)
from medchain.cli._common import console, reports_errors
from medchain.consensus import EngineKind
from medchain.crypto import MAX_RING_SIZE
from medchain.types import MedchainError

MAX_COUNT = 100_000_000
"""More of anything than a benchmark on one machine gets through."""
MAX_NODES = 1_000
MAX_VALIDATORS = 100
"""Validator processes on one machine."""
MAX_MS = 3_600_000
MAX_SECONDS = 86_400.0


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


@reports_errors
def ledger(
    txs: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Signed transfers to validate and apply.")
    ] = 20_000,
    block_size: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Transactions per block.")
    ] = 1_000,
    seal_iterations: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Records to encrypt+wrap.")
    ] = 2_000,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Transaction validate+apply rate on one core, sealed-block rate, record encryption time."""
    with stage_progress(disabled=as_json) as progress:
        result = run_ledger_bench(txs, block_size, seal_iterations, progress)
    if as_json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
        return
    table = Table("measure", "result", "target", title=f"ledger benchmark — {_machine()}")
    table.add_row(
        "validate+apply (decode, Ed25519 verify, nonce, fee, transfer)",
        f"{result.validate_apply_tx_per_s:,.0f} tx/s ({result.validate_apply_us_per_tx:.1f} µs/tx)",
        "≥ 8,000 tx/s",
    )
    table.add_row(
        f"sealed blocks of {result.block_size} (+ state root, signature, SQLite fsync)",
        f"{result.sealed_tx_per_s:,.0f} tx/s",
        "—",
    )
    table.add_row(
        f"encrypt+wrap {result.record_bytes} B FHIR record for {result.readers} readers",
        f"mean {result.seal_record_ms_mean:.3f} ms, p50 {result.seal_record_ms_p50:.3f}, "
        f"p99 {result.seal_record_ms_p99:.3f}",
        "≤ 1 ms",
    )
    console.print(table)


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


@reports_errors
def sim_speed(
    nodes: Annotated[int, typer.Option(min=1, max=MAX_NODES, help="Validators.")] = 4,
    blocks: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="Empty blocks per run.")] = 300,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Simulated blocks per wall-clock second, per engine, with the real ledger."""
    speeds = run_sim_bench(nodes, blocks)
    if as_json:
        rows = [{**dataclasses.asdict(s), "blocks_per_s": s.blocks_per_s} for s in speeds]
        print(json.dumps(rows, indent=2))
        return
    table = Table(
        "engine",
        "ledger work",
        "blocks",
        "wall (s)",
        "blocks/s",
        "target",
        title=f"simulator speed, n = {nodes}, empty blocks — {_machine()}",
    )
    for s in speeds:
        work = "opening vote + vesting rewards" if s.rewards else "bare blocks"
        table.add_row(
            s.engine, work, str(s.blocks), f"{s.wall_s:.2f}", f"{s.blocks_per_s:,.0f}", "≥ 200"
        )
    console.print(table)


@reports_errors
def state_root(
    sizes: Annotated[
        str, typer.Option(help="State sizes (entries), comma-separated.")
    ] = "10000,100000,1000000",
    changes: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="New entries each block writes.")
    ] = 400,
    blocks: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="Blocks timed per size.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """A block's state root cost as the state grows: the two-tier tree against one tree
    over every entry (the definition it replaced)."""
    with stage_progress(disabled=as_json) as progress:
        timings = run_state_bench(_counts(sizes, "--sizes", 1), changes, blocks, progress)
    if as_json:
        print(json.dumps([dataclasses.asdict(t) for t in timings], indent=2))
        return
    table = Table(
        "entries",
        "first root (s)",
        f"block of {changes} new entries: p50 / max (ms)",
        "one tree over every entry (ms), twice a block before",
        title=f"state root per block — {_machine()}",
    )
    for t in timings:
        table.add_row(
            f"{t.entries:,}",
            f"{t.build_s:.2f}",
            f"{t.block_ms_p50:.1f} / {t.block_ms_max:.1f}",
            f"{t.single_tree_ms:,.0f}",
        )
    console.print(table)


@reports_errors
def ring(
    sizes: Annotated[str, typer.Option(help="Ring sizes, comma-separated.")] = "11,64",
    runs: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="Signatures per size.")] = 200,
    forged: Annotated[
        int,
        typer.Option(
            min=0,
            max=MAX_COUNT,
            help="Also admit this many forged 64-member ring transactions, checked on the "
            "event loop's thread as before and in the verifier's workers as now: the CPU "
            "each costs the loop and the node.",
        ),
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """bLSAG ring signature sign and verify times (ristretto255, libsodium)."""
    timings = run_ring_bench(_counts(sizes, "--sizes", 2, MAX_RING_SIZE), runs)
    cost = run_forged_cost(64, forged) if forged else None
    if as_json:
        rows = [dataclasses.asdict(t) for t in timings]
        both = {"timings": rows, "forged": dataclasses.asdict(cost)} if cost else None
        print(json.dumps(rows if both is None else both, indent=2))
        return
    table = Table(
        "ring size",
        "sign p50 (ms)",
        "sign mean",
        "verify p50 (ms)",
        "verify mean",
        "target",
        title=f"ring signatures — {_machine()}",
    )
    for t in timings:
        target = "≤ 5 ms each" if t.ring_size == 11 else "reported"
        table.add_row(
            str(t.ring_size),
            f"{t.sign_ms_p50:.2f}",
            f"{t.sign_ms_mean:.2f}",
            f"{t.verify_ms_p50:.2f}",
            f"{t.verify_ms_mean:.2f}",
            target,
        )
    console.print(table)
    if cost is not None:
        _print_forged_cost(cost)


def _print_forged_cost(cost: ForgedCost) -> None:
    table = Table(
        "forged 64-member ring transaction",
        "loop thread CPU (ms)",
        "node CPU (ms)",
        title=f"what one forgery costs — {cost.forged} forged, {_machine()}",
    )
    table.add_row(
        "checked on the event loop (before)",
        f"{cost.before_loop_ms:.2f}",
        f"{cost.before_total_ms:.2f}",
    )
    table.add_row(
        f"checked by {cost.workers} verifier worker(s) (now)",
        f"{cost.after_loop_ms:.2f}",
        f"{cost.after_total_ms:.2f}",
    )
    console.print(table)
    console.print(
        f"one client address can make the node check {cost.client_forged_per_s:.1f} of them "
        "a second once its burst is spent (default budget)"
    )


def flood(
    seconds: Annotated[
        float, typer.Option(min=1, max=MAX_SECONDS, help="How long the flood lasts.")
    ] = 20,
    validators: Annotated[int, typer.Option(min=1, max=7, help="Validators.")] = 1,
    attackers: Annotated[int, typer.Option(min=1, max=16, help="Attacker processes.")] = 2,
    batch: Annotated[
        int, typer.Option(min=1, max=1_000, help="Forged transactions per request.")
    ] = 16,
    ring_size: Annotated[int, typer.Option(min=2, max=64, help="Members of each ring.")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
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
        return
    attack = result.attack
    table = Table("measure", "value", title=f"forged-transaction flood — {_machine()}")
    rows = [
        (
            "flood",
            f"{result.duration_s:.0f} s, {result.attackers} attacker(s), "
            f"{result.batch} forged a request, rings of {result.ring_size}",
        ),
        ("attack requests (by HTTP status)", f"{attack.requests:,} {attack.statuses}"),
        (
            "forged read / verified by the node",
            f"{attack.forged_sent:,} / {attack.forged_verified:,}",
        ),
        ("node CPU during the flood", f"{result.node_cpu_s:.1f} s"),
        (
            "GET /v1/status p50 / p95 / max",
            f"{result.status_p50_ms:.1f} / {result.status_p95_ms:.1f} / "
            f"{result.status_max_ms:.1f} ms ({result.status_requests} requests, "
            f"{result.status_failures} failed)",
        ),
        ("blocks committed", str(result.blocks)),
        ("honest transfers committed", f"{result.honest_committed} of {result.honest_sent}"),
        (
            "honest submission p50 / max",
            f"{result.honest_submit_p50_ms:.0f} / {result.honest_submit_max_ms:.0f} ms",
        ),
        (
            "honest commit p50 / max",
            f"{result.honest_commit_p50_ms:.0f} / {result.honest_commit_max_ms:.0f} ms",
        ),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)


@reports_errors
def search_speed(
    records: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="Records to index.")] = 10_000,
    keywords: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="Keywords per record.")] = 10,
    block_size: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Index transactions per block.")
    ] = 1_000,
    epochs: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_COUNT,
            help="Indexing sessions, each ended by a search of every keyword.",
        ),
    ] = 10,
    queries: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Timed searches per keyword.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Encrypted keyword search: index entries per record, search latency by result size."""
    with stage_progress(disabled=as_json) as progress:
        result = run_search_bench(records, keywords, block_size, epochs, queries, progress=progress)
    if as_json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
        return
    table = Table(
        "result set",
        "keyword",
        "records",
        "entries walked",
        "epochs",
        "p50",
        "p95",
        "target",
        title=(
            f"encrypted search over {result.entries:,} index entries ({result.records:,} "
            f"records, {result.keywords_per_record} keywords each) — {_machine()}"
        ),
    )
    for q in result.queries:
        table.add_row(
            q.size,
            q.keyword,
            f"{q.results:,}",
            f"{q.entries:,}",
            str(q.epochs),
            f"{q.p50_ms:.2f} ms",
            f"{q.p95_ms:.2f} ms",
            "≤ 10 ms",
        )
    console.print(table)
    console.print(
        f"index entries per record: client {result.client_entries_us_per_record:.0f} µs "
        f"(keys, labels, AES-GCM values); chain {result.apply_us_per_record:.0f} µs "
        f"(decode, Ed25519 verify, apply; blocks of {result.block_size:,})"
    )


@reports_errors
def gateway(
    patients: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Patients, each with a bedside hub.")
    ] = 200,
    per_patient: Annotated[
        int, typer.Option(min=1, max=MAX_DEVICES_PER_PATIENT, help="Devices per patient.")
    ] = 5,
    rate: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Readings per device per minute.")
    ] = 300,
    duration: Annotated[float, typer.Option(min=1, max=MAX_SECONDS, help="Seconds of load.")] = 30,
    tick_ms: Annotated[
        int, typer.Option(min=1, max=MAX_MS, help="How often a hub forwards its readings.")
    ] = 1_000,
    consensus: Annotated[str, typer.Option(help="pbft, afbft or dpos.")] = "afbft",
    validators: Annotated[
        int, typer.Option(min=1, max=MAX_VALIDATORS, help="Validator processes.")
    ] = 4,
    block_interval_ms: Annotated[
        int, typer.Option(min=0, max=MAX_MS, help="Pause between blocks.")
    ] = 500,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
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
        print(json.dumps(dataclasses.asdict(result), indent=2))
        return
    title = (
        f"gateway benchmark — {result.devices:,} devices ({result.patients} patients x "
        f"{per_patient}) at {result.rate_per_device_per_min}/min, hubs every "
        f"{result.tick_ms} ms, {result.duration_s:.0f} s, {result.validators} validators "
        f"{result.consensus} — {_machine()}"
    )
    summary = Table("measure", "result", "target", title=title)
    summary.add_row("offered load", f"{result.offered_per_s:,.0f} readings/s", "—")
    summary.add_row(
        f"sustained into the chain (steady state, {result.steady_window_s:.0f} s counted)",
        f"{result.sustained_per_s:,.0f} readings/s",
        "≥ 5,000 readings/s",
    )
    summary.add_row(
        "committed before the load ended, per second of load",
        f"{result.committed_while_loaded_per_s:,.0f} readings/s",
        "—",
    )
    summary.add_row(
        "readings sent, accepted, lost",
        f"{result.sent:,}, {result.accepted:,}, {result.lost:,}",
        "none lost",
    )
    summary.add_row("hub requests resent (connection failed)", f"{result.resent:,}", "—")
    e2e = result.end_to_end
    summary.add_row(
        "device → committed batch",
        f"p50 {e2e.p50_ms:,.0f} ms, p95 {e2e.p95_ms:,.0f} ms, p99 {e2e.p99_ms:,.0f} ms",
        "—",
    )
    late = result.end_to_end_last_third
    summary.add_row(
        "device → committed batch, readings due in the last third",
        f"p50 {late.p50_ms:,.0f} ms, p95 {late.p95_ms:,.0f} ms",
        "no growth",
    )
    ack = result.acknowledgement
    summary.add_row(
        "hub request → gateway's answer (stored)",
        f"p50 {ack.p50_ms:,.0f} ms, p95 {ack.p95_ms:,.0f} ms",
        "—",
    )
    summary.add_row(
        "batches, mean readings per batch",
        f"{result.batches:,}, {result.mean_batch_readings:,.0f}",
        "—",
    )
    summary.add_row(
        "gateway CPU, intake workers included (share of one core)",
        f"{100 * result.gateway_cpu_share:.0f} %",
        "—",
    )
    summary.add_row("fleet enrolment on chain", f"{result.enrol_s:,.0f} s", "—")
    console.print(summary)
    for reason, count in result.refused.items():
        console.print(f"[yellow]{count:,} refused[/]: {reason}", highlight=False)


@reports_errors
def network(
    ctx: typer.Context,
    clients: Annotated[int, typer.Option(min=1, max=MAX_COUNT, help="Concurrent clients.")] = 100,
    duration: Annotated[
        float, typer.Option(min=1, max=MAX_SECONDS, help="Seconds per phase.")
    ] = 30,
    consensus: Annotated[str, typer.Option(help="pbft, afbft or dpos.")] = "pbft",
    validators: Annotated[
        int, typer.Option(min=1, max=MAX_VALIDATORS, help="Validator processes.")
    ] = 4,
    rate: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Record uploads and queries per second.")
    ] = 500,
    window: Annotated[
        int, typer.Option(min=1, max=MAX_COUNT, help="Transfers each client keeps in flight.")
    ] = 60,
    block_interval_ms: Annotated[
        int, typer.Option(min=0, max=MAX_MS, help="Pause between blocks.")
    ] = 500,
    anchoring: Annotated[
        bool,
        typer.Option(help="Anchor checkpoints on the devnet's own Ganache, and report the cost."),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Sustained tx/s and commit latency, then record upload and query latency with
    concurrent clients, on a fresh devnet of node processes on 127.0.0.1."""
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
        )
    if as_json:
        print(json.dumps(dataclasses.asdict(result), indent=2))
        return
    title = (
        f"network benchmark — {result.validators} validators, {result.consensus}, "
        f"{result.clients} clients, {result.duration_s:.0f} s per phase, "
        f"blocks every {result.block_interval_ms} ms, "
        f"anchoring {'on' if result.anchoring else 'off'} — {_machine()}"
    )
    summary = Table("measure", "result", "target", title=title)
    summary.add_row(
        "sustained throughput (committed transfers)",
        f"{result.sustained_tx_per_s:,.0f} tx/s",
        "≥ 2,000 tx/s",
    )
    lat = result.tx_commit_latency
    summary.add_row(
        "commit latency (submit → committed block)",
        f"p50 {lat.p50_ms:,.0f} ms, p95 {lat.p95_ms:,.0f} ms, p99 {lat.p99_ms:,.0f} ms",
        "—",
    )
    summary.add_row(
        "blocks, mean transactions per block",
        f"{result.blocks}, {result.mean_block_txs:,.0f}",
        "—",
    )
    cost = result.anchoring
    if cost is not None:
        summary.add_row(
            "anchoring: heights anchored, anchor transactions",
            f"up to {cost.anchored_height:,}, {cost.anchors_sent:,} sent",
            "—",
        )
        summary.add_row(
            "anchoring: CPU per anchor, share of the validators' CPU",
            f"{cost.cpu_ms_per_anchor:,.1f} ms, {100 * cost.cpu_share:.2f} %",
            "share ≤ 1 %",
        )
        summary.add_row(
            "anchoring: certified checkpoint → anchor receipt",
            f"{cost.submit_mean_ms:,.0f} ms mean",
            "—",
        )
    console.print(summary)
    table = Table(
        "operation",
        "requests",
        "errors",
        "req/s",
        "mean",
        "min",
        "max",
        "p50",
        "p90",
        "p95",
        title=f"application latency (ms), open loop at {result.upload_rate_target} req/s",
    )
    _latency_row(table, "record upload (body stored + tx admitted)", result.upload)
    _latency_row(table, "record upload → committed", result.upload_commit_latency)
    _latency_row(table, "record query (version + blob + decrypt)", result.query)
    console.print(table)
    console.print("targets: upload p95 ≤ 250 ms at ≥ 500 req/s; query p95 ≤ 50 ms", highlight=False)
    for reason, count in result.errors.items():
        console.print(f"[yellow]{count:,} failed[/]: {reason}", highlight=False)


def _latency_row(table: Table, name: str, s: LatencySummary) -> None:
    table.add_row(
        name,
        f"{s.requests:,}",
        f"{s.errors:,}",
        f"{s.throughput_per_s:,.0f}",
        f"{s.mean_ms:,.1f}",
        f"{s.min_ms:,.1f}",
        f"{s.max_ms:,.1f}",
        f"{s.p50_ms:,.1f}",
        f"{s.p90_ms:,.1f}",
        f"{s.p95_ms:,.1f}",
    )
