"""Paper 000's link-bandwidth sizing: consensus traffic per node against block size and
node count, and the link on which it stays at 35-40 % (the headroom the paper sized
its 19 nodes for).

The votes, checkpoints and (empty) proposals are measured: each engine runs in the
simulator and its messages are counted by kind. A block's body is then added as the
paper's formula does: every proposer sends it to the n - 1 others (under AFBFT each
of the height's candidates sends its own). The busiest node is a proposer: its
uplink carries the body n - 1 times a block on top of its votes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction

from medchain.consensus import EngineKind
from medchain.sim._chain import Scenario
from medchain.sim._experiments import sweep
from medchain.sim._metrics import KB, SimResult

PROPOSAL = "proposal"
VOTE_KIND = "prepare"
"""Every voter sends one prepare to every other node per block: it counts the voters."""
HEADROOM_PCT = (35, 40)
MBIT = 125_000
"""Bytes per second in a megabit per second."""


@dataclass(frozen=True)
class Traffic:
    """One engine at one node count, per committed block (empty blocks), measured."""

    engine: str
    nodes: int
    block_ms: Fraction
    proposers: Fraction
    """Proposals broadcast per height."""
    proposal_bytes: Fraction
    """One proposal message of an empty block."""
    vote_bytes: Fraction
    """Everything but proposals (votes, checkpoints), per block."""
    voters: Fraction

    def network_bytes(self, block_bytes: int) -> Fraction:
        """Bytes all nodes send per block with a body of `block_bytes`."""
        fan_out = self.nodes - 1
        return self.proposers * fan_out * (self.proposal_bytes + block_bytes) + self.vote_bytes

    def per_node_kb_s(self, block_bytes: int) -> Fraction:
        """Mean uplink per node (each byte sent is also received once: the downlink is equal)."""
        return self.network_bytes(block_bytes) / self.nodes * 1000 / self.block_ms / KB

    def busiest_kb_s(self, block_bytes: int) -> Fraction:
        """A proposer's uplink: its proposal to every other node, and its own votes."""
        own_votes = self.vote_bytes / self.voters
        per_block = (self.nodes - 1) * (self.proposal_bytes + block_bytes) + own_votes
        return per_block * 1000 / self.block_ms / KB


def measure(result: SimResult) -> Traffic:
    """Read the per-block traffic of a run of empty blocks from its messages by kind."""
    blocks = result.blocks
    block_ms = result.summary().mean_block_time_ms
    if blocks < 2 or block_ms is None:
        raise ValueError("the run committed too few blocks to measure its traffic")
    kinds = {t.kind: t for t in result.traffic}
    fan_out = len(result.nodes) - 1
    proposals = kinds[PROPOSAL]
    votes = kinds[VOTE_KIND]
    return Traffic(
        engine=result.label,
        nodes=len(result.nodes),
        block_ms=Fraction(block_ms).limit_denominator(1000),
        proposers=Fraction(proposals.messages, blocks * fan_out),
        proposal_bytes=Fraction(proposals.bytes, proposals.messages),
        vote_bytes=Fraction(result.bytes_sent - proposals.bytes, blocks),
        voters=Fraction(votes.messages, blocks * fan_out),
    )


def measure_traffic(
    base: Scenario,
    engines: Sequence[EngineKind],
    node_counts: Sequence[int],
    progress: Callable[[str], None] | None = None,
) -> list[Traffic]:
    """One seeded run of empty blocks per engine and node count (at least 2 nodes)."""
    return [measure(result) for result in sweep(base, engines, node_counts, progress)]


def link_share_pct(kb_s: Fraction, link_mbps: int) -> Fraction:
    return kb_s * KB * 100 / (link_mbps * MBIT)


def headroom_link_mbps(kb_s: Fraction) -> tuple[Fraction, Fraction]:
    """The links on which this traffic is 40 % and 35 % of the bandwidth."""
    low, high = HEADROOM_PCT
    return kb_s * KB * 100 / high / MBIT, kb_s * KB * 100 / low / MBIT
