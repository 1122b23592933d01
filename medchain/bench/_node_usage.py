"""What each node process of the network benchmark uses, per phase: CPU (user +
system, psutil), peak resident memory (Linux's VmHWM: the high-water mark since the
node started), and its traffic from its own /metrics — P2P payload bytes and HTTP API
body bytes, each way. Every node is sampled at each phase's start and end; a phase's
figures are the differences (paper 001 compares block producers with ordinary nodes,
so the blocks each node proposed are counted too)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

from medchain.bench._resources import peak_rss_bytes, process_usage

TRAFFIC = {
    "p2p_sent": "medchain_p2p_bytes_out_total",
    "p2p_received": "medchain_p2p_bytes_in_total",
    "api_sent": "medchain_api_sent_bytes_total",
    "api_received": "medchain_api_received_bytes_total",
}
"""Each traffic figure and the node's counter it is read from."""
_MB = 1_000_000


@dataclass(frozen=True)
class NodeSample:
    at_s: float
    """time.monotonic() when taken."""
    cpu_s: float
    peak_rss_bytes: int
    traffic: dict[str, int]
    """Bytes since the node started, by the keys of TRAFFIC."""


@dataclass(frozen=True)
class NodePhase:
    phase: str
    wall_s: float
    cpu_s: float
    cpu_share: float
    """cpu_s / wall_s: the share of one core the node used in the phase."""
    peak_rss_mb: float
    """The node's peak resident memory since it started, read at the phase's end."""
    p2p_sent_mb: float
    p2p_received_mb: float
    api_sent_mb: float
    api_received_mb: float
    blocks_proposed: int
    """Committed blocks of the phase whose proposer is this node."""


@dataclass(frozen=True)
class NodeUsage:
    node: str
    pid: int
    address: str
    most_blocks: bool
    """Proposed the most committed blocks of the run (PBFT: the primary)."""
    phases: list[NodePhase]


@dataclass(frozen=True)
class SampledNode:
    name: str
    pid: int
    url: str
    address: str
    """Its validator address, as blocks name their proposer."""


ReadMetrics = Callable[[str], Awaitable[str]]
"""Fetch a node's /metrics text from its API URL."""


def metric_value(text: str, name: str) -> int | None:
    """The value of the unlabelled metric `name` in Prometheus text, None if absent."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and not sample.labels:
                return int(sample.value)
    return None


async def sample_node(node: SampledNode, read_metrics: ReadMetrics) -> NodeSample:
    """One sample; RuntimeError if the node process is gone."""
    at_s = time.monotonic()
    usage = process_usage(node.pid, descendants=True)
    if usage is None:
        raise RuntimeError(f"{node.name} (pid {node.pid}) exited during the benchmark")
    peak = peak_rss_bytes(node.pid) or usage.rss_bytes  # the present size if no VmHWM
    text = await read_metrics(node.url)
    traffic = {key: metric_value(text, name) or 0 for key, name in TRAFFIC.items()}
    return NodeSample(at_s, usage.cpu_s, peak, traffic)


def phase_usage(phase: str, before: NodeSample, after: NodeSample, proposed: int) -> NodePhase:
    """A phase's figures from the samples at its start and end."""
    wall = after.at_s - before.at_s
    cpu = after.cpu_s - before.cpu_s

    def mb(key: str) -> float:
        return (after.traffic[key] - before.traffic[key]) / _MB

    return NodePhase(
        phase=phase,
        wall_s=wall,
        cpu_s=cpu,
        cpu_share=cpu / wall if wall > 0 else 0.0,
        peak_rss_mb=after.peak_rss_bytes / _MB,
        p2p_sent_mb=mb("p2p_sent"),
        p2p_received_mb=mb("p2p_received"),
        api_sent_mb=mb("api_sent"),
        api_received_mb=mb("api_received"),
        blocks_proposed=proposed,
    )


class PhaseSampler:
    """Samples every node at each phase's start and end, and sums up per node."""

    def __init__(self, nodes: Sequence[SampledNode], read_metrics: ReadMetrics) -> None:
        self.nodes, self._read = list(nodes), read_metrics
        self._phases: list[tuple[str, dict[str, NodeSample], dict[str, NodeSample]]] = []

    async def _sample_all(self) -> dict[str, NodeSample]:
        return {node.name: await sample_node(node, self._read) for node in self.nodes}

    @asynccontextmanager
    async def phase(self, name: str) -> AsyncIterator[None]:
        """Sample every node before and after the block's work."""
        started = await self._sample_all()
        yield
        self._phases.append((name, started, await self._sample_all()))

    def usage(self, proposals: Sequence[tuple[float, str]]) -> list[NodeUsage]:
        """Per node, per phase; `proposals`: (time seen, proposer address) of each
        committed block, counted in the phase it was seen in."""
        phases = {node.name: self._phases_of(node, proposals) for node in self.nodes}
        totals = {n.address: sum(p.blocks_proposed for p in phases[n.name]) for n in self.nodes}
        top = most_proposing(totals)
        return [
            NodeUsage(n.name, n.pid, n.address, n.address == top, phases[n.name])
            for n in self.nodes
        ]

    def _phases_of(
        self, node: SampledNode, proposals: Sequence[tuple[float, str]]
    ) -> list[NodePhase]:
        result = []
        for phase, started, ended in self._phases:
            before, after = started[node.name], ended[node.name]
            proposed = sum(
                before.at_s <= t <= after.at_s and p == node.address for t, p in proposals
            )
            result.append(phase_usage(phase, before, after, proposed))
        return result


def most_proposing(blocks_by_proposer: Mapping[str, int]) -> str | None:
    """The proposer of the most blocks; None if none proposed or several tie first."""
    ranked = sorted(blocks_by_proposer.items(), key=lambda kv: -kv[1])
    if not ranked or ranked[0][1] == 0:
        return None
    if len(ranked) > 1 and ranked[1][1] == ranked[0][1]:
        return None
    return ranked[0][0]
