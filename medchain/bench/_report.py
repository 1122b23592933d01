"""The benchmarks' results as tables: a title, column headings and rows of text, with
the targets of docs/BENCHMARKS.md beside the figures. The command line prints them."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field

from medchain.bench._ceiling import CEILING_FORMULA, ValidateCeiling
from medchain.bench._flood import FloodResult, ForgedCost
from medchain.bench._gateway import GatewayBenchResult
from medchain.bench._ledger import LedgerBenchResult
from medchain.bench._network import LatencySummary, NetworkBenchResult
from medchain.bench._ring import RingTiming
from medchain.bench._search import SearchBenchResult
from medchain.bench._sim import SimSpeed
from medchain.bench._state import StateRootTiming
from medchain.bench._state_disk import DiskStateTiming

MEASURE = ("measure", "result", "target")


@dataclass(frozen=True)
class Report:
    title: str
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    """Lines to print under the table."""


def machine() -> str:
    """The processor, its cores and the Python version, for a table's title."""
    cpu = platform.processor() or platform.machine()
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def ledger_report(result: LedgerBenchResult) -> Report:
    return Report(
        f"ledger benchmark — {machine()}",
        MEASURE,
        [
            (
                "validate+apply (decode, Ed25519 verify, nonce, fee, transfer)",
                f"{result.validate_apply_tx_per_s:,.0f} tx/s "
                f"({result.validate_apply_us_per_tx:.1f} µs/tx)",
                "≥ 8,000 tx/s",
            ),
            (
                f"sealed blocks of {result.block_size} (+ state root, signature, SQLite fsync)",
                f"{result.sealed_tx_per_s:,.0f} tx/s",
                "—",
            ),
            (
                f"encrypt+wrap {result.record_bytes} B FHIR record for {result.readers} readers",
                f"mean {result.seal_record_ms_mean:.3f} ms, p50 {result.seal_record_ms_p50:.3f}, "
                f"p99 {result.seal_record_ms_p99:.3f}",
                "≤ 1 ms",
            ),
        ],
    )


def sim_report(speeds: Sequence[SimSpeed], nodes: int) -> Report:
    columns = ("engine", "ledger work", "blocks", "wall (s)", "blocks/s", "target")
    report = Report(f"simulator speed, n = {nodes}, empty blocks — {machine()}", columns)
    for s in speeds:
        work = "opening vote + vesting rewards" if s.rewards else "bare blocks"
        report.rows.append(
            (s.engine, work, str(s.blocks), f"{s.wall_s:.2f}", f"{s.blocks_per_s:,.0f}", "≥ 200")
        )
    return report


def state_report(timings: Sequence[StateRootTiming], changes: int) -> Report:
    columns = (
        "entries",
        "first root (s)",
        f"block of {changes} new entries: p50 / max (ms)",
        "one tree over every entry (ms), twice a block before",
    )
    report = Report(f"state root per block — {machine()}", columns)
    for t in timings:
        report.rows.append(
            (
                f"{t.entries:,}",
                f"{t.build_s:.2f}",
                f"{t.block_ms_p50:.1f} / {t.block_ms_max:.1f}",
                f"{t.single_tree_ms:,.0f}",
            )
        )
    return report


def state_disk_report(timings: Sequence[DiskStateTiming], changes: int) -> Report:
    columns = (
        "entries",
        "built in (s)",
        "open to first commit (s)",
        f"block of {changes} new entries: p50 / max (ms)",
        "of which state root / commit, p50 (ms)",
        "peak resident memory (MB)",
    )
    report = Report(f"state on disk, default cache — {machine()}", columns)
    for t in timings:
        report.rows.append(
            (
                f"{t.entries:,}",
                "reused" if t.build_s is None else f"{t.build_s:.1f}",
                f"{t.open_to_first_commit_s:.2f}",
                f"{t.block_ms_p50:.1f} / {t.block_ms_max:.1f}",
                f"{t.root_ms_p50:.1f} / {t.commit_ms_p50:.1f}",
                f"{t.peak_rss_mb:,.0f}",
            )
        )
    return report


def ring_report(timings: Sequence[RingTiming]) -> Report:
    columns = ("ring size", "sign p50 (ms)", "sign mean", "verify p50 (ms)", "verify mean")
    report = Report(f"ring signatures — {machine()}", (*columns, "target"))
    for t in timings:
        report.rows.append(
            (
                str(t.ring_size),
                f"{t.sign_ms_p50:.2f}",
                f"{t.sign_ms_mean:.2f}",
                f"{t.verify_ms_p50:.2f}",
                f"{t.verify_ms_mean:.2f}",
                "≤ 5 ms each" if t.ring_size == 11 else "reported",
            )
        )
    return report


def forged_report(cost: ForgedCost) -> Report:
    columns = ("forged 64-member ring transaction", "loop thread CPU (ms)", "node CPU (ms)")
    return Report(
        f"what one forgery costs — {cost.forged} forged, {machine()}",
        columns,
        [
            (
                "checked on the event loop (before)",
                f"{cost.before_loop_ms:.2f}",
                f"{cost.before_total_ms:.2f}",
            ),
            (
                f"checked by {cost.workers} verifier worker(s) (now)",
                f"{cost.after_loop_ms:.2f}",
                f"{cost.after_total_ms:.2f}",
            ),
        ],
        [
            f"one client address can make the node check {cost.client_forged_per_s:.1f} of "
            "them a second once its burst is spent (default budget)"
        ],
    )


def flood_report(result: FloodResult) -> Report:
    attack = result.attack
    flood = (
        f"{result.duration_s:.0f} s, {result.attackers} attacker(s), "
        f"{result.batch} forged a request, rings of {result.ring_size}"
    )
    status = (
        f"{result.status_p50_ms:.1f} / {result.status_p95_ms:.1f} / "
        f"{result.status_max_ms:.1f} ms ({result.status_requests} requests, "
        f"{result.status_failures} failed)"
    )
    rows = [
        ("flood", flood),
        ("attack requests (by HTTP status)", f"{attack.requests:,} {attack.statuses}"),
        (
            "forged read / verified by the node",
            f"{attack.forged_sent:,} / {attack.forged_verified:,}",
        ),
        ("node CPU during the flood", f"{result.node_cpu_s:.1f} s"),
        ("GET /v1/status p50 / p95 / max", status),
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
    return Report(f"forged-transaction flood — {machine()}", ("measure", "value"), list(rows))


def search_report(result: SearchBenchResult) -> Report:
    title = (
        f"encrypted search over {result.entries:,} index entries ({result.records:,} "
        f"records, {result.keywords_per_record} keywords each) — {machine()}"
    )
    columns = ("result set", "keyword", "records", "entries walked", "epochs", "p50", "p95")
    report = Report(title, (*columns, "target"))
    for q in result.queries:
        report.rows.append(
            (
                q.size,
                q.keyword,
                f"{q.results:,}",
                f"{q.entries:,}",
                str(q.epochs),
                f"{q.p50_ms:.2f} ms",
                f"{q.p95_ms:.2f} ms",
                "≤ 10 ms",
            )
        )
    report.notes.append(
        f"index entries per record: client {result.client_entries_us_per_record:.0f} µs "
        f"(keys, labels, AES-GCM values); chain {result.apply_us_per_record:.0f} µs "
        f"(decode, Ed25519 verify, apply; blocks of {result.block_size:,})"
    )
    return report


def _percentiles(s: LatencySummary, p99: bool = True) -> str:
    text = f"p50 {s.p50_ms:,.0f} ms, p95 {s.p95_ms:,.0f} ms"
    return f"{text}, p99 {s.p99_ms:,.0f} ms" if p99 else text


def gateway_report(result: GatewayBenchResult, per_patient: int) -> Report:
    title = (
        f"gateway benchmark — {result.devices:,} devices ({result.patients} patients x "
        f"{per_patient}) at {result.rate_per_device_per_min}/min, hubs every "
        f"{result.tick_ms} ms, {result.duration_s:.0f} s, {result.validators} validators "
        f"{result.consensus} — {machine()}"
    )
    steady = f"sustained into the chain (steady state, {result.steady_window_s:.0f} s counted)"
    late = "device → committed batch, readings due in the last third"
    rows = [
        ("offered load", f"{result.offered_per_s:,.0f} readings/s", "—"),
        (steady, f"{result.sustained_per_s:,.0f} readings/s", "≥ 5,000 readings/s"),
        (
            "committed before the load ended, per second of load",
            f"{result.committed_while_loaded_per_s:,.0f} readings/s",
            "—",
        ),
        (
            "readings sent, accepted, lost",
            f"{result.sent:,}, {result.accepted:,}, {result.lost:,}",
            "none lost",
        ),
        ("hub requests resent (connection failed)", f"{result.resent:,}", "—"),
        ("device → committed batch", _percentiles(result.end_to_end), "—"),
        (late, _percentiles(result.end_to_end_last_third, p99=False), "no growth"),
        (
            "hub request → gateway's answer (stored)",
            _percentiles(result.acknowledgement, p99=False),
            "—",
        ),
        (
            "batches, mean readings per batch",
            f"{result.batches:,}, {result.mean_batch_readings:,.0f}",
            "—",
        ),
        (
            "gateway CPU, intake workers included (share of one core)",
            f"{100 * result.gateway_cpu_share:.0f} %",
            "—",
        ),
        ("fleet enrolment on chain", f"{result.enrol_s:,.0f} s", "—"),
    ]
    return Report(title, MEASURE, list(rows))


def network_report(result: NetworkBenchResult) -> Report:
    """The summary: throughput, commit latency, blocks, and what anchoring cost."""
    title = (
        f"network benchmark — {result.validators} validators, {result.consensus}, "
        f"{result.clients} clients, {result.duration_s:.0f} s per phase, "
        f"blocks every {result.block_interval_ms} ms, "
        f"anchoring {'on' if result.anchoring else 'off'} — {machine()}"
    )
    rows = [
        (
            "sustained throughput (committed transfers)",
            f"{result.sustained_tx_per_s:,.0f} tx/s",
            "≥ 2,000 tx/s",
        ),
        ("commit latency (submit → committed block)", _percentiles(result.tx_commit_latency), "—"),
        (
            "blocks, mean transactions per block",
            f"{result.blocks}, {result.mean_block_txs:,.0f}",
            "—",
        ),
    ]
    notes = []
    if result.ceiling is not None:
        rows.append(_ceiling_row(result.ceiling))
        notes.append(ceiling_caption(result.ceiling))
    cost = result.anchoring
    if cost is not None:
        rows += [
            (
                "anchoring: heights anchored, anchor transactions",
                f"up to {cost.anchored_height:,}, {cost.anchors_sent:,} sent",
                "—",
            ),
            (
                "anchoring: CPU per anchor, share of the validators' CPU",
                f"{cost.cpu_ms_per_anchor:,.1f} ms, {100 * cost.cpu_share:.2f} %",
                "share ≤ 1 %",
            ),
            (
                "anchoring: certified checkpoint → anchor receipt",
                f"{cost.submit_mean_ms:,.0f} ms mean",
                "—",
            ),
        ]
    return Report(title, MEASURE, list(rows), notes)


def _ceiling_row(ceiling: ValidateCeiling) -> tuple[str, str, str]:
    return (
        "sustained throughput, share of the validate ceiling",
        f"{100 * ceiling.sustained_share:.0f} % of {ceiling.ceiling_tx_per_s:,.0f} tx/s",
        "≥ 45 %",
    )


def ceiling_caption(ceiling: ValidateCeiling) -> str:
    """The formula with this sitting's figures, and how they were measured."""
    return (
        f"validate ceiling = {CEILING_FORMULA} = {ceiling.cores} x "
        f"{ceiling.one_core_tx_per_s:,.0f} / {ceiling.validators} = "
        f"{ceiling.ceiling_tx_per_s:,.0f} tx/s (one-core rate measured before the devnet "
        f"started: {ceiling.txs:,} transfers, {ceiling.measured_s:.1f} s)"
    )


def node_usage_report(result: NetworkBenchResult) -> Report:
    """Per node, per phase: what each node process used (paper 001 compares the block
    producers with the other nodes)."""
    columns = (
        "node",
        "phase",
        "CPU (s)",
        "CPU (% of a core)",
        "peak RSS (MB)",
        "P2P sent / received (MB)",
        "API sent / received (MB)",
        "blocks proposed",
    )
    report = Report(
        "per node",
        columns,
        notes=[
            "CPU: user + system; peak RSS: the high-water mark since the node started, read "
            "at the phase's end; P2P: payload bytes (no framing, no TLS); API: request bodies "
            "received, response bodies sent (node0's include the benchmark's block watcher); "
            "* proposed the most committed blocks"
        ],
    )
    for node in result.nodes:
        name = f"{node.node} *" if node.most_blocks else node.node
        for p in node.phases:
            report.rows.append(
                (
                    name,
                    p.phase,
                    f"{p.cpu_s:,.1f}",
                    f"{100 * p.cpu_share:.0f} %",
                    f"{p.peak_rss_mb:,.0f}",
                    f"{p.p2p_sent_mb:,.1f} / {p.p2p_received_mb:,.1f}",
                    f"{p.api_sent_mb:,.1f} / {p.api_received_mb:,.1f}",
                    f"{p.blocks_proposed:,}",
                )
            )
    return report


def latency_report(result: NetworkBenchResult) -> Report:
    """The application's latencies under open-loop load, against their targets."""
    columns = ("operation", "requests", "errors", "req/s", "mean", "min", "max")
    report = Report(
        f"application latency (ms), open loop at {result.upload_rate_target} req/s",
        (*columns, "p50", "p90", "p95"),
        notes=["targets: upload p95 ≤ 250 ms at ≥ 500 req/s; query p95 ≤ 50 ms"],
    )
    for name, s in (
        ("record upload (body stored + tx admitted)", result.upload),
        ("record upload → committed", result.upload_commit_latency),
        ("record query (signed body + wrap, decrypt)", result.query),
    ):
        figures = (s.mean_ms, s.min_ms, s.max_ms, s.p50_ms, s.p90_ms, s.p95_ms)
        report.rows.append(
            (
                name,
                f"{s.requests:,}",
                f"{s.errors:,}",
                f"{s.throughput_per_s:,.0f}",
                *(f"{v:,.1f}" for v in figures),
            )
        )
    return report
