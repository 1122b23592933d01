"""The soak's figures from its samples: per process, resident memory at the start, once
the run has settled and at the end, and the least-squares slope of memory over the
samples after it settled; the readings sent, acknowledged, committed and lost; and the
verdicts against the targets of issue 21 (a slope under 1 MB a minute for every process
of the chain, and no acknowledged reading lost). MB here is 10^6 bytes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from medchain.bench._report import Report, machine

MB = 1_000_000
SLOPE_TARGET_MB_PER_MIN = 1.0
SETTLE_S = 600.0
"""Memory is judged after the first ten minutes of a run ..."""
SETTLE_SHARE_BELOW_S = 6_000.0
"""... or after its first tenth when it is shorter than this (100 minutes), so a short
run still reports a slope."""


@dataclass(frozen=True)
class Point:
    """One process at one sample."""

    t_s: float
    """Seconds since the load began."""
    rss_bytes: int
    cpu_s: float


def settle_s(duration_s: float) -> float:
    """When memory starts to be judged: after ten minutes, or after the first tenth of a
    run shorter than 100 minutes."""
    return SETTLE_S if duration_s >= SETTLE_SHARE_BELOW_S else duration_s / 10


def settle_rule(duration_s: float) -> str:
    if duration_s >= SETTLE_SHARE_BELOW_S:
        return "after the first 10 minutes"
    return f"after the first tenth of the run ({settle_s(duration_s):,.0f} s: shorter than 100 min)"


def slope_per_minute(points: Sequence[tuple[float, float]]) -> float | None:
    """The least-squares slope of y over t (t in seconds) per minute; None with fewer
    than two distinct times."""
    if len({t for t, _ in points}) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    covariance = sum((t - mean_t) * (y - mean_y) for t, y in points)
    return covariance / spread * 60


@dataclass(frozen=True)
class ProcessSummary:
    name: str
    judged: bool
    """Whether the memory verdict counts it: the chain's processes (validators, gateway)
    are judged, the load generator is shown only."""
    samples: int
    rss_start_bytes: int
    rss_settled_bytes: int | None
    """At the first sample once the run settled."""
    rss_end_bytes: int
    slope_mb_per_min: float | None
    """Over the samples once the run settled; None with fewer than two of them."""
    cpu_share: float
    """CPU seconds over the run, as a share of one core."""

    @property
    def within_target(self) -> bool:
        return self.slope_mb_per_min is not None and (
            self.slope_mb_per_min < SLOPE_TARGET_MB_PER_MIN
        )


def summarise_process(
    name: str, points: Sequence[Point], settle_at_s: float, *, judged: bool
) -> ProcessSummary:
    """The figures of one process from its samples (in time order, at least one)."""
    settled = [p for p in points if p.t_s >= settle_at_s]
    first, last = points[0], points[-1]
    elapsed = last.t_s - first.t_s
    return ProcessSummary(
        name=name,
        judged=judged,
        samples=len(points),
        rss_start_bytes=first.rss_bytes,
        rss_settled_bytes=settled[0].rss_bytes if settled else None,
        rss_end_bytes=last.rss_bytes,
        slope_mb_per_min=slope_per_minute([(p.t_s, p.rss_bytes / MB) for p in settled]),
        cpu_share=(last.cpu_s - first.cpu_s) / elapsed if elapsed > 0 else 0.0,
    )


@dataclass(frozen=True)
class CacheSummary:
    """node0's state cache over the run (its `medchain_state_cache_bytes`): the cache
    fills up to its bound (`state.cache_mb`), and that filling is part of node0's memory
    slope, bounded growth rather than a leak."""

    samples: int
    start_bytes: int
    settled_bytes: int | None
    end_bytes: int
    slope_mb_per_min: float | None
    """Over the samples once the run settled; None with fewer than two of them."""


def summarise_cache(points: Sequence[tuple[float, int]], settle_at_s: float) -> CacheSummary:
    """The cache's figures from its (seconds since the load began, bytes) samples, in
    time order, at least one."""
    settled = [(t, size) for t, size in points if t >= settle_at_s]
    return CacheSummary(
        samples=len(points),
        start_bytes=points[0][1],
        settled_bytes=settled[0][1] if settled else None,
        end_bytes=points[-1][1],
        slope_mb_per_min=slope_per_minute([(t, size / MB) for t, size in settled]),
    )


PRODUCER, ORDINARY = "producer", "ordinary"


@dataclass(frozen=True)
class RoleSummary:
    """The nodes of one role over the run, as paper 001 compares them: block producers
    (proposed at least one block committed during the load) against ordinary nodes
    (proposed none: they receive, check and store the blocks)."""

    role: str
    nodes: list[str]
    blocks_proposed: int
    cpu_share_mean: float
    cpu_share_min: float
    cpu_share_max: float
    rss_start_mean_bytes: int
    rss_end_mean_bytes: int
    slope_mean_mb_per_min: float | None
    """The mean of the nodes' slopes once the run settled; None if any has none."""


def summarise_roles(
    processes: Sequence[ProcessSummary], proposed: Mapping[str, int]
) -> list[RoleSummary]:
    """Producers then ordinary nodes, each role only if it has a node; `proposed`:
    every node's blocks proposed during the load (other processes are left out)."""
    nodes = [p for p in processes if p.name in proposed]
    roles = []
    for role, members in (
        (PRODUCER, [p for p in nodes if proposed[p.name] > 0]),
        (ORDINARY, [p for p in nodes if proposed[p.name] == 0]),
    ):
        if members:
            roles.append(_role(role, members, sum(proposed[p.name] for p in members)))
    return roles


def _role(role: str, members: Sequence[ProcessSummary], blocks: int) -> RoleSummary:
    cpu = [p.cpu_share for p in members]
    slopes = [p.slope_mb_per_min for p in members]
    known = [s for s in slopes if s is not None]
    return RoleSummary(
        role=role,
        nodes=[p.name for p in members],
        blocks_proposed=blocks,
        cpu_share_mean=sum(cpu) / len(cpu),
        cpu_share_min=min(cpu),
        cpu_share_max=max(cpu),
        rss_start_mean_bytes=sum(p.rss_start_bytes for p in members) // len(members),
        rss_end_mean_bytes=sum(p.rss_end_bytes for p in members) // len(members),
        slope_mean_mb_per_min=sum(known) / len(known) if len(known) == len(slopes) else None,
    )


@dataclass(frozen=True)
class Readings:
    sent: int
    acknowledged: int
    """Accepted by the gateway (stored: it must commit them)."""
    committed: int
    """Acknowledged readings in batches the chain shows at the end."""
    lost: int
    """Acknowledged readings not committed by the end, after the drain."""
    refused: dict[str, int] = field(default_factory=dict)
    """Readings the gateway refused, or whose request failed, by reason."""
    resent: int = 0
    """Hub requests sent again because their connection failed."""
    drained: bool = True
    """Whether the gateway committed everything it held within the drain's bound."""


@dataclass(frozen=True)
class SoakResult:
    validators: int
    consensus: str
    patients: int
    devices: int
    rate_per_s: int
    duration_s: float
    sample_s: float
    settle_s: float
    settle_rule: str
    samples: int
    """Rounds of samples taken (each samples every process)."""
    samples_expected: int
    height: int
    """node0's height at the last sample."""
    processes: list[ProcessSummary]
    readings: Readings
    state_cache: CacheSummary | None = None
    """node0's state cache, None if its /metrics never answered."""
    committee: int | None = None
    """DPoS: the producers elected each epoch, as asked (None: the chain's default)."""
    proposed: dict[str, int] = field(default_factory=dict)
    """Each node's blocks committed during the load (empty if node0 did not say)."""
    roles: list[RoleSummary] = field(default_factory=list)

    @property
    def memory_within_target(self) -> bool:
        return all(p.within_target for p in self.processes if p.judged)

    @property
    def none_lost(self) -> bool:
        return self.readings.lost == 0 and self.readings.drained

    @property
    def passed(self) -> bool:
        return self.memory_within_target and self.none_lost


def summarise_soak(
    series: Mapping[str, Sequence[Point]], judged: set[str], settle_at_s: float
) -> list[ProcessSummary]:
    """Each process's figures, in the order of `series`."""
    return [
        summarise_process(name, points, settle_at_s, judged=name in judged)
        for name, points in series.items()
    ]


def soak_json(result: SoakResult) -> dict[str, Any]:
    """The summary as JSON, with the verdicts."""
    return {
        **asdict(result),
        "verdicts": {
            "memory_slope_below_1_mb_per_min": result.memory_within_target,
            "no_reading_lost": result.none_lost,
            "passed": result.passed,
        },
    }


def _mb(value: int | None) -> str:
    return "—" if value is None else f"{value / MB:,.1f}"


def _verdict(process: ProcessSummary) -> str:
    if not process.judged:
        return "not judged (load generator)"
    if process.slope_mb_per_min is None:
        return "FAIL: too few samples"
    return "pass" if process.within_target else "FAIL"


def soak_reports(result: SoakResult) -> list[Report]:
    """Two tables: memory and CPU per process, then the readings and the verdicts."""
    title = (
        f"soak — {result.duration_s / 60:,.1f} min, {result.rate_per_s:,} readings/s from "
        f"{result.devices:,} devices ({result.patients:,} patients), {result.validators} "
        f"validators {result.consensus}, samples every {result.sample_s:g} s — {machine()}"
    )
    columns = (
        "process",
        "RSS start (MB)",
        "RSS settled (MB)",
        "RSS end (MB)",
        "slope (MB/min)",
        "CPU (share of a core)",
        "slope < 1 MB/min",
    )
    rows: list[tuple[str, ...]] = [
        (
            p.name,
            _mb(p.rss_start_bytes),
            _mb(p.rss_settled_bytes),
            _mb(p.rss_end_bytes),
            "—" if p.slope_mb_per_min is None else f"{p.slope_mb_per_min:+.3f}",
            f"{100 * p.cpu_share:.0f} %",
            _verdict(p),
        )
        for p in result.processes
    ]
    notes = [
        f"settled and slope: {result.settle_rule}; RSS of each process with its children "
        f"(the gateway's intake workers); {result.samples} of {result.samples_expected} "
        "samples taken"
    ]
    cache = result.state_cache
    if cache is not None:
        slope = "—" if cache.slope_mb_per_min is None else f"{cache.slope_mb_per_min:+.3f}"
        notes.append(
            f"node0's state cache (bounded, part of node0's RSS): {_mb(cache.start_bytes)} "
            f"MB at the start, {_mb(cache.settled_bytes)} settled, {_mb(cache.end_bytes)} "
            f"at the end, slope {slope} MB/min"
        )
    memory = Report(title, columns, rows, notes)
    roles = [roles_report(result)] if result.roles else []
    return [memory, *roles, _readings_report(result)]


def roles_report(result: SoakResult) -> Report:
    """Producers against ordinary nodes: CPU and memory per role, paper 001's
    comparison."""
    committee = "" if result.committee is None else f", committees of {result.committee}"
    title = (
        f"soak — block producers and ordinary nodes ({result.validators} validators "
        f"{result.consensus}{committee})"
    )
    columns = (
        "role",
        "nodes",
        "blocks proposed",
        "CPU mean (min to max), share of a core",
        "RSS start, mean (MB)",
        "RSS end, mean (MB)",
        "slope, mean (MB/min)",
    )
    rows: list[tuple[str, ...]] = [
        (
            r.role,
            ", ".join(r.nodes),
            f"{r.blocks_proposed:,}",
            f"{100 * r.cpu_share_mean:.1f} % ({100 * r.cpu_share_min:.1f} to "
            f"{100 * r.cpu_share_max:.1f} %)",
            _mb(r.rss_start_mean_bytes),
            _mb(r.rss_end_mean_bytes),
            "—" if r.slope_mean_mb_per_min is None else f"{r.slope_mean_mb_per_min:+.3f}",
        )
        for r in result.roles
    ]
    return Report(title, columns, rows, _role_notes(result.roles))


def _role_notes(roles: Sequence[RoleSummary]) -> list[str]:
    notes = [
        "producer: proposed at least one block committed during the load; ordinary: none "
        "(it receives, checks, applies and stores every block); CPU over the whole load"
    ]
    by_role = {r.role: r for r in roles}
    if PRODUCER in by_role and ORDINARY in by_role and by_role[ORDINARY].cpu_share_mean > 0:
        ratio = by_role[PRODUCER].cpu_share_mean / by_role[ORDINARY].cpu_share_mean
        notes.append(
            f"producers use {ratio:.2f} times the CPU of ordinary nodes (paper 001: about twice)"
        )
    return notes


def _readings_report(result: SoakResult) -> Report:
    r = result.readings
    refused = ", ".join(f"{n:,} {why}" for why, n in r.refused.items()) or "none"
    rows: list[tuple[str, ...]] = [
        ("readings sent", f"{r.sent:,}", "—"),
        ("acknowledged by the gateway", f"{r.acknowledged:,}", "—"),
        ("committed (acknowledged, on chain at the end)", f"{r.committed:,}", "—"),
        ("lost (acknowledged, not committed after the drain)", f"{r.lost:,}", "0"),
        ("gateway drained within its bound", "yes" if r.drained else "NO", "yes"),
        ("refused or failed", refused, "—"),
        ("hub requests resent (connection failed)", f"{r.resent:,}", "—"),
        ("chain height at the last sample", f"{result.height:,}", "—"),
        (
            "memory slope of every validator and the gateway",
            "pass" if result.memory_within_target else "FAIL",
            f"< {SLOPE_TARGET_MB_PER_MIN:g} MB/min",
        ),
        ("no reading lost", "pass" if result.none_lost else "FAIL", "0 lost"),
        ("soak", "PASSED" if result.passed else "FAILED", "—"),
    ]
    return Report("soak — readings and verdicts", ("measure", "result", "target"), rows)


__all__ = [
    "MB",
    "CacheSummary",
    "Point",
    "ProcessSummary",
    "Readings",
    "RoleSummary",
    "SoakResult",
    "roles_report",
    "settle_rule",
    "settle_s",
    "slope_per_minute",
    "soak_json",
    "soak_reports",
    "summarise_cache",
    "summarise_process",
    "summarise_roles",
    "summarise_soak",
]
