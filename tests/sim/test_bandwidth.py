"""Paper 000's bandwidth sizing: the traffic per block read from a real run's
messages, and block bodies added as the paper's formula adds them."""

from __future__ import annotations

from fractions import Fraction

import pytest

from medchain.consensus import EngineKind
from medchain.sim import KB, Scenario, measure, measure_traffic, simulate
from medchain.sim._bandwidth import headroom_link_mbps, link_share_pct

BASE = Scenario(nodes=4, blocks=8, block_interval_ms=500)


def test_the_measured_traffic_adds_up_to_what_the_run_sent() -> None:
    result = simulate(BASE)
    traffic = measure(result)
    assert traffic.engine == "pbft" and traffic.nodes == 4
    assert traffic.proposers == 1 and traffic.voters == 4
    assert traffic.network_bytes(0) * result.blocks == result.bytes_sent
    per_node = traffic.per_node_kb_s(0)
    assert per_node == traffic.network_bytes(0) / 4 * 1000 / traffic.block_ms / KB


def test_afbft_proposes_once_per_candidate() -> None:
    traffic = measure(simulate(Scenario(engine=EngineKind.AFBFT, nodes=4, blocks=8)))
    assert traffic.proposers == 4  # every validator is a candidate at 4 nodes


def test_a_block_body_goes_to_every_other_node_from_each_proposer() -> None:
    traffic = measure(simulate(BASE))
    body = 100 * KB
    per_block = traffic.network_bytes(body) - traffic.network_bytes(0)
    assert per_block == traffic.proposers * 3 * body
    busiest = traffic.busiest_kb_s(body) - traffic.busiest_kb_s(0)
    assert busiest == Fraction(3 * body * 1000, KB) / traffic.block_ms


def test_more_validators_carry_more_traffic_per_node() -> None:
    small, large = measure_traffic(BASE, [EngineKind.PBFT], [4, 7])
    assert large.per_node_kb_s(0) > small.per_node_kb_s(0)
    assert large.busiest_kb_s(10 * KB) > small.busiest_kb_s(10 * KB)


def test_a_share_of_the_link_and_the_links_for_the_headroom() -> None:
    kb_s = Fraction(5_000)  # 5,000 KB/s = 40 Mbit/s
    assert link_share_pct(kb_s, 100) == 40
    at_40, at_35 = headroom_link_mbps(kb_s)
    assert at_40 == 100 and at_35 == Fraction(800, 7)


def test_a_run_without_blocks_cannot_be_measured() -> None:
    result = simulate(Scenario(nodes=4, blocks=1, block_interval_ms=100))
    with pytest.raises(ValueError, match="too few blocks"):
        measure(result)
