"""The simulator's loop: determinism, delivery as the network model says, timers,
Send/Broadcast routing, Twins, evidence, metrics of a run, and the run bounds."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from medchain.consensus._api import (
    Action,
    Broadcast,
    Committed,
    Event,
    MessageReceived,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    TimerKind,
    TxsAvailable,
)
from medchain.sim import (
    PPM,
    Drop,
    FaultSchedule,
    LinkConfig,
    NetworkConfig,
    NodeSpec,
    Partition,
    SimAction,
    SimConfig,
    SimNode,
    Simulator,
    StopReason,
)
from medchain.types import EquivocationEvidence, SignedProposal
from tests.sim._engines import PingPong, Recorder, beacon, key, make_block, ping_pong_factory, specs

LAN = NetworkConfig(LinkConfig(latency_ms=10))


def run_recorders(
    engines: Sequence[Recorder],
    network: NetworkConfig = LAN,
    until_ms: int = 1_000,
    start_ms: int = 0,
) -> Simulator:
    config = SimConfig(specs(len(engines)), network, start_ms=start_ms)
    sim = Simulator(config, lambda i, _spec: engines[i])
    sim.run(until_ms=until_ms)
    return sim


def ping_pong_run(seed: int, keep_log: bool = False) -> Simulator:
    network = NetworkConfig(LinkConfig(latency_ms=10, jitter_ms=5, loss_ppm=PPM // 50))
    config = SimConfig(specs(4), network, seed=seed, keep_log=keep_log)
    sim = Simulator(config, ping_pong_factory(4))
    sim.run(until_ms=5_000)
    return sim


# -- determinism ---------------------------------------------------------------------


def test_one_seed_gives_one_trace() -> None:
    first = ping_pong_run(7, keep_log=True).result()
    second = ping_pong_run(7, keep_log=True).result()
    assert first.blocks > 10
    assert first.trace_hash == second.trace_hash
    assert first.log == second.log
    assert first == second


def test_another_seed_gives_another_trace() -> None:
    assert ping_pong_run(7).result().trace_hash != ping_pong_run(8).result().trace_hash


def test_the_trace_covers_the_engines_answers() -> None:
    def chatty(text: bytes) -> Recorder:
        return Recorder(lambda e: [Broadcast(text, "x")] if isinstance(e, Start) else [])

    a = run_recorders([chatty(b"a"), Recorder()]).result()
    b = run_recorders([chatty(b"b"), Recorder()]).result()
    assert a.trace_hash != b.trace_hash


# -- delivery ------------------------------------------------------------------------


def test_broadcast_reaches_every_other_node_after_the_latency() -> None:
    engines = [Recorder(beacon(0)), Recorder(), Recorder()]
    run_recorders(engines, until_ms=250)
    assert engines[0].received() == []
    for engine in engines[1:]:
        assert [t for t, _ in engine.received()] == [10, 110, 210]


def test_bandwidth_delays_back_to_back_messages() -> None:
    def two_big(event: Event) -> list[SimAction]:
        if isinstance(event, Start):
            return [Broadcast(b"x" * 100, "big"), Broadcast(b"y" * 100, "big")]
        return []

    engines = [Recorder(two_big), Recorder()]
    run_recorders(engines, NetworkConfig(LinkConfig(latency_ms=10, bytes_per_s=1_000)))
    assert [(t, d[:1]) for t, d in engines[1].received()] == [(110, b"x"), (210, b"y")]


def test_processing_cost_queues_a_burst_first_come_first_served() -> None:
    def burst(event: Event) -> list[SimAction]:
        if isinstance(event, Start):
            return [Broadcast(bytes([i]) * 10, "burst") for i in range(5)]
        return []

    engines = [Recorder(burst), Recorder()]
    config = SimConfig(specs(2), LAN, cpu_us_per_message=3_000)
    Simulator(config, lambda i, _spec: engines[i]).run(until_ms=1_000)
    # all five arrive at 10 ms; the node takes one every 3 ms, in order of arrival
    assert [(t, d[:1]) for t, d in engines[1].received()] == [
        (10 + 3 * i, bytes([i])) for i in range(5)
    ]


def test_send_reaches_the_key_holder_only_and_unknown_keys_are_dropped() -> None:
    def sender(event: Event) -> list[SimAction]:
        if isinstance(event, Start):
            return [Send(key(2), b"to two", "direct"), Send(b"\x99" * 32, b"lost", "direct")]
        return []

    engines = [Recorder(sender), Recorder(), Recorder()]
    result = run_recorders(engines).result()
    assert engines[1].received() == []
    assert engines[2].received() == [(10, b"to two")]
    assert result.drops == {Drop.UNKNOWN: 1}
    assert [(t.kind, t.messages, t.bytes) for t in result.traffic] == [("direct", 1, 6)]


def test_engines_see_the_clock_from_start_ms() -> None:
    engines = [Recorder(beacon(0)), Recorder()]
    run_recorders(engines, until_ms=1_000_050, start_ms=1_000_000)
    assert engines[0].starts() == [1_000_000]
    assert engines[1].received()[0][0] == 1_000_010


def test_partition_drops_across_the_cut_and_heals() -> None:
    cut = Partition((frozenset({2}),), start_ms=300, end_ms=600)
    engines = [Recorder(beacon(0)), Recorder(), Recorder()]
    sim = run_recorders(engines, NetworkConfig(LinkConfig(latency_ms=10), partitions=(cut,)))
    times = [t for t, _ in engines[2].received()]
    assert times == [10, 110, 210, 610, 710, 810, 910]
    assert len(engines[1].received()) == 10
    assert sim.result().drops == {Drop.PARTITIONED: 3}


def test_a_message_in_flight_when_the_cut_starts_is_dropped() -> None:
    cut = Partition((frozenset({1}),), start_ms=50, end_ms=60)
    engines = [Recorder(beacon(0)), Recorder()]
    slow = NetworkConfig(LinkConfig(latency_ms=55), partitions=(cut,))
    run_recorders(engines, slow, until_ms=200)
    assert [t for t, _ in engines[1].received()] == [155]


# -- timers --------------------------------------------------------------------------

T1 = Timer(TimerKind.ROUND, 1, 0)
T2 = Timer(TimerKind.ROUND, 1, 1)


def test_a_later_set_timer_with_the_same_value_replaces_the_pending_one() -> None:
    def script(event: Event) -> list[SimAction]:
        if isinstance(event, Start):
            return [SetTimer(T1, 100), SetTimer(T2, 200), SetTimer(T1, 300)]
        return []

    engine = Recorder(script)
    run_recorders([engine])
    assert engine.fired() == [(200, T2), (300, T1)]


def test_rearming_from_a_message_pushes_the_timer_back() -> None:
    def node0(event: Event) -> list[SimAction]:
        return [Broadcast(b"poke", "poke")] if isinstance(event, Start) else []

    def node1(event: Event) -> list[SimAction]:
        if isinstance(event, Start | MessageReceived):
            return [SetTimer(T1, 50)]
        return []

    engine = Recorder(node1)
    run_recorders([Recorder(node0), engine])
    assert engine.fired() == [(60, T1)]


def test_txs_available_and_scheduled_calls() -> None:
    engine = Recorder()
    sim = Simulator(SimConfig(specs(2), LAN), lambda i, _s: engine if i == 0 else Recorder())
    sim.at(40, lambda s: s.txs_available(0))
    sim.txs_available(0, at_ms=70)
    sim.run(until_ms=100)
    assert [e.now_ms for e in engine.events if isinstance(e, TxsAvailable)] == [40, 70]


# -- Twins ---------------------------------------------------------------------------


def test_twins_both_receive_what_is_sent_to_their_identity() -> None:
    def sender(event: Event) -> list[SimAction]:
        if isinstance(event, Start):
            return [Send(key(0), b"to zero", "direct"), Broadcast(b"all", "all")]
        return []

    engines = [Recorder(), Recorder(sender), Recorder()]
    nodes = (*specs(2), NodeSpec("n0-twin", key(0)))
    sim = Simulator(SimConfig(nodes, LAN), lambda i, _s: engines[i])
    result = sim.run(until_ms=100)
    assert engines[0].received() == engines[2].received() == [(10, b"to zero"), (10, b"all")]
    assert [n.honest for n in sim.nodes] == [False, True, False]
    assert [n.honest for n in result.nodes] == [False, True, False]


def twins_run(quorum: int) -> Simulator:
    # Validators 0..3; sim nodes 0 and 4 both hold validator 0's key and lead height 1.
    nodes = (*specs(4), NodeSpec("twin", key(0)))
    split = Partition((frozenset({0, 1}), frozenset({4, 2, 3})), start_ms=0, end_ms=10_000)
    network = NetworkConfig(LinkConfig(latency_ms=10), partitions=(split,))
    sim = Simulator(SimConfig(nodes, network), ping_pong_factory(4, quorum=quorum))
    sim.run(until_ms=60)
    return sim


def test_twins_with_split_peers_expose_an_unsafe_quorum() -> None:
    result = twins_run(quorum=2).result()
    assert result.safety_violations() == (1,)
    assert set(result.hashes(1)) == {1, 2, 3}


def test_twins_with_split_peers_cannot_break_a_two_thirds_quorum() -> None:
    result = twins_run(quorum=3).result()
    assert result.safety_violations() == ()
    assert set(result.hashes(1)) == {2, 3}


# -- metrics of a run ----------------------------------------------------------------


def test_ping_pong_metrics_are_as_computed_by_hand() -> None:
    sim = Simulator(SimConfig(specs(4), LAN, label="toy"), ping_pong_factory(4))
    result = sim.run(until_ms=1_000)
    # Commit at 20 ms, then every 130 ms (pong round trip 20 + 10 to followers + 100 wait).
    assert [h.first_commit_ms for h in result.heights] == [20 + 130 * k for k in range(8)]
    assert result.blocks == 8
    assert all(len(h.commits) == 4 and h.round_changes == 0 for h in result.heights)
    assert [(h.messages, h.bytes > 0) for h in result.heights] == [(9, True)] * 8
    assert {t.kind: t.messages for t in result.traffic} == {"commit": 24, "ping": 24, "pong": 24}
    assert result.commit_latencies_ms() == [0] * 8 + [10] * 24
    assert (result.latency_percentile(50), result.latency_percentile(99)) == (10, 10)
    assert result.mean_block_time_ms() == 930 / 8
    assert result.safety_violations() == ()
    assert result.round_timeouts == 0
    assert result.end_ms == 1_000 and result.stop_reason is StopReason.UNTIL
    assert all(stats["dropped_malformed"] == 0 for stats in result.engine_stats)
    assert result.engine_stats[1]["received"] > 0
    assert sim.height(0) == 8


def test_a_lost_round_is_counted_and_recovered() -> None:
    # Node 0 leads height 1 but is crashed: a round timeout passes leadership to node 1.
    faults = FaultSchedule().crash(0, 0)
    sim = Simulator(SimConfig(specs(4), LAN), ping_pong_factory(4, timeout_ms=500), faults)
    result = sim.run(until_ms=600)
    first = result.heights[0]
    assert first.height == 1 and first.round_changes == 1 and first.first_commit_ms == 520
    assert result.round_timeouts == 3
    assert result.round_changes == 1


class Liar(PingPong):
    """Commits a block of its own making at height 2."""

    def handle(self, event: Event) -> list[Action]:
        return [
            Committed(make_block(2, 0, b"liar", 0, b"x"), 0)
            if isinstance(a, Committed) and a.block.height == 2
            else a
            for a in super().handle(event)
        ]


def test_planted_disagreement_is_a_safety_violation() -> None:
    def factory(index: int, spec: NodeSpec) -> PingPong:
        return (Liar if index == 2 else PingPong)(index, 4)

    result = Simulator(SimConfig(specs(4), LAN), factory).run(until_ms=500)
    assert result.safety_violations() == (2,)
    assert result.hashes(2)[2] != result.hashes(2)[0] == result.hashes(2)[1]


def test_evidence_is_recorded_and_handed_to_the_harness() -> None:
    proposal = SignedProposal(1, 0, b"\x01" * 32, key(0), b"sig")
    evidence = EquivocationEvidence(proposal, SignedProposal(1, 0, b"\x02" * 32, key(0), b"s"))
    handed: list[tuple[int, EquivocationEvidence | object]] = []

    def script(event: Event) -> list[SimAction]:
        return [ReportEvidence(evidence)] if isinstance(event, Start) else []

    engines = [Recorder(), Recorder(script)]
    sim = Simulator(
        SimConfig(specs(2), LAN),
        lambda i, _s: engines[i],
        on_evidence=lambda sim, report: handed.append((report.node, report.evidence)),
    )
    result = sim.run(until_ms=10)
    assert handed == [(1, evidence)]
    assert [(e.node, e.time_ms, e.evidence) for e in result.evidence] == [(1, 0, evidence)]


# -- bounds --------------------------------------------------------------------------


def test_a_run_stops_at_the_event_bound() -> None:
    def busy(event: Event) -> list[SimAction]:
        return [SetTimer(T1, 0)]  # fires again at once, forever

    sim = Simulator(SimConfig(specs(1), max_events=1_000), lambda i, _s: Recorder(busy))
    result = sim.run(until_ms=10)
    assert result.stop_reason is StopReason.MAX_EVENTS
    assert result.events == 1_000
    assert result.end_ms == 0


def test_stop_when_and_idle() -> None:
    sim = Simulator(SimConfig(specs(4), LAN), ping_pong_factory(4))
    result = sim.run(until_ms=10_000, stop_when=lambda s: s.honest_heights() >= 3)
    assert result.stop_reason is StopReason.STOP_WHEN
    assert result.blocks == 3 and result.end_ms == 280
    later = sim.run(until_ms=1_000)  # continues from where it stopped
    assert later.blocks == 8
    quiet = Simulator(SimConfig(specs(2)), lambda i, _s: Recorder()).run(until_ms=500)
    assert quiet.stop_reason is StopReason.IDLE and quiet.end_ms == 500


def test_an_engine_error_says_which_node_and_when() -> None:
    def broken(event: Event) -> list[SimAction]:
        if isinstance(event, TimerFired):
            raise RuntimeError("boom")
        return [SetTimer(T1, 5)]

    sim = Simulator(SimConfig(specs(1)), lambda i, _s: Recorder(broken))
    with pytest.raises(RuntimeError) as info:
        sim.run(until_ms=10)
    assert "node 0 at 5 ms" in "".join(info.value.__notes__)


def test_simnode_identity() -> None:
    sim = Simulator(SimConfig(specs(3)), lambda i, _s: Recorder())
    assert [(n.index, n.name, n.key, n.honest) for n in sim.nodes] == [
        (i, f"n{i}", key(i), True) for i in range(3)
    ]
    assert isinstance(sim.nodes[0], SimNode)
