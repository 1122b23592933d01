"""What a run measured: commits per height and node, traffic by message kind, drops,
round changes, evidence, engines' counters, and the trace hash that proves two runs
of one seed were the same run.

Only honest nodes count in the safety check and in latency and block-time figures;
traffic counts every copy any node put on a link (lost ones included), by kind.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from medchain.types import EquivocationEvidence, InvalidProposalEvidence

KB = 1000
"""Figures in KB are in thousands of bytes."""


class StopReason(enum.StrEnum):
    UNTIL = "until"
    """The clock reached `until_ms`."""
    IDLE = "idle"
    """Nothing was left to happen (the clock is moved on to `until_ms`)."""
    STOP_WHEN = "stop_when"
    MAX_EVENTS = "max_events"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    index: int
    name: str
    key: bytes
    honest: bool


@dataclass(frozen=True, slots=True)
class NodeCommit:
    node: int
    time_ms: int
    block_hash: bytes
    round_changes: int


@dataclass(frozen=True, slots=True)
class HeightRecord:
    height: int
    header_time_ms: int | None
    """The block's own time (from the first honest commit, else the first commit);
    None for a height nobody committed."""
    first_commit_ms: int | None
    """When the first honest node committed it; None if only faulty nodes did."""
    round_changes: int
    """The highest round any honest node entered at this height, or reported when it
    committed (so a height still stalled shows its round changes too)."""
    commits: tuple[NodeCommit, ...]
    """Every node's commits of this height in time order (a node may repeat one after
    a restart)."""
    messages: int
    """Messages sent since the previous height's first honest commit (or the start)."""
    bytes: int


@dataclass(frozen=True, slots=True)
class KindTraffic:
    kind: str
    messages: int
    bytes: int


@dataclass(frozen=True, slots=True)
class EvidenceReport:
    node: int
    time_ms: int
    evidence: EquivocationEvidence | InvalidProposalEvidence


def percentile(sorted_values: list[int], pct: int) -> int | None:
    """Nearest-rank percentile (integer arithmetic, so it never depends on rounding)."""
    if not sorted_values:
        return None
    rank = max(1, -(-pct * len(sorted_values) // 100))
    return sorted_values[rank - 1]


@dataclass(frozen=True, slots=True)
class SimSummary:
    """One row of the comparison table."""

    engine: str
    nodes: int
    blocks: int
    mean_block_time_ms: float | None
    messages_per_block: float | None
    kb_per_block: float | None
    kb_per_s: float
    messages_per_s: float
    view_changes: int
    latency_p50_ms: int | None
    latency_p99_ms: int | None


@dataclass(frozen=True, slots=True)
class SimResult:
    label: str
    seed: int
    nodes: tuple[NodeInfo, ...]
    start_ms: int
    end_ms: int
    events: int
    """Queue items processed (the bound `max_events` applies to this)."""
    stop_reason: StopReason
    heights: tuple[HeightRecord, ...]
    """By height; includes heights only faulty nodes committed and stalled heights
    (no commits) where honest nodes changed rounds."""
    traffic: tuple[KindTraffic, ...]
    """By message kind, sorted."""
    delivered: int
    drops: Mapping[str, int]
    """Network drops by reason (`Drop` values), sorted."""
    round_timeouts: int
    """Round timers that fired at honest nodes still in that round of a height they
    had not committed (timers of past rounds fire too, as nothing cancels them)."""
    evidence: tuple[EvidenceReport, ...]
    engine_stats: tuple[Mapping[str, int], ...]
    """Each node's engine `stats` counters at the end (empty if it keeps none)."""
    trace_hash: bytes
    log: tuple[str, ...] = ()
    """The readable trace, if `SimConfig.keep_log` was set."""

    # -- plain figures -------------------------------------------------------------

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def honest(self) -> frozenset[int]:
        return frozenset(n.index for n in self.nodes if n.honest)

    def committed(self) -> tuple[HeightRecord, ...]:
        """Heights at least one honest node committed."""
        return tuple(h for h in self.heights if h.first_commit_ms is not None)

    @property
    def blocks(self) -> int:
        return len(self.committed())

    @property
    def messages(self) -> int:
        return sum(t.messages for t in self.traffic)

    @property
    def bytes_sent(self) -> int:
        return sum(t.bytes for t in self.traffic)

    @property
    def round_changes(self) -> int:
        return sum(h.round_changes for h in self.heights)

    def per_block(self, total: float) -> float | None:
        blocks = self.blocks
        return total / blocks if blocks else None

    def per_second(self, total: float) -> float:
        return total * 1000 / self.duration_ms if self.duration_ms > 0 else 0.0

    def mean_block_time_ms(self) -> float | None:
        """Time from the start to the last block's first honest commit, per block (the
        first block's set-up counts, as in the paper's figures)."""
        committed = self.committed()
        if not committed:
            return None
        last = committed[-1].first_commit_ms
        assert last is not None
        return (last - self.start_ms) / len(committed)

    # -- latency and safety ----------------------------------------------------------

    def commit_latencies_ms(self) -> list[int]:
        """Commit time minus the block's header time, for each honest node's first
        commit of each height, sorted."""
        honest = self.honest
        latencies = []
        for record in self.heights:
            if record.header_time_ms is None:
                continue
            seen: set[int] = set()
            for commit in record.commits:
                if commit.node in honest and commit.node not in seen:
                    seen.add(commit.node)
                    latencies.append(commit.time_ms - record.header_time_ms)
        return sorted(latencies)

    def latency_percentile(self, pct: int) -> int | None:
        return percentile(self.commit_latencies_ms(), pct)

    def hashes(self, height: int) -> dict[int, bytes]:
        """The block hash each honest node committed at `height` (first commit)."""
        honest = self.honest
        found: dict[int, bytes] = {}
        for record in self.heights:
            if record.height == height:
                for commit in record.commits:
                    if commit.node in honest:
                        found.setdefault(commit.node, commit.block_hash)
        return found

    def safety_violations(self) -> tuple[int, ...]:
        """Heights where two honest nodes (or one, twice) committed different blocks."""
        honest = self.honest
        bad = []
        for record in self.heights:
            first = None
            for commit in record.commits:
                if commit.node not in honest:
                    continue
                if first is None:
                    first = commit.block_hash
                elif commit.block_hash != first:
                    bad.append(record.height)
                    break
        return tuple(bad)

    def summary(self) -> SimSummary:
        return SimSummary(
            engine=self.label,
            nodes=len(self.nodes),
            blocks=self.blocks,
            mean_block_time_ms=self.mean_block_time_ms(),
            messages_per_block=self.per_block(self.messages),
            kb_per_block=self.per_block(self.bytes_sent / KB),
            kb_per_s=self.per_second(self.bytes_sent) / KB,
            messages_per_s=self.per_second(self.messages),
            view_changes=self.round_changes,
            latency_p50_ms=self.latency_percentile(50),
            latency_p99_ms=self.latency_percentile(99),
        )

    def height_over_time(self) -> list[tuple[int, int]]:
        """(time of first honest commit, height): the chain's progress, for plots."""
        return [
            (h.first_commit_ms, h.height) for h in self.committed() if h.first_commit_ms is not None
        ]
