"""Faults: crash and restart, pause and resume, and the adversary hook with the
re-targeting offline attack built on it."""

from __future__ import annotations

import pytest

from medchain.consensus._api import Timer, TimerKind
from medchain.sim import (
    BEGIN,
    AdversaryControl,
    BlockCommitted,
    Drop,
    FaultSchedule,
    LinkConfig,
    MessageSent,
    NetworkConfig,
    Observation,
    OfflineMode,
    OfflineTargeting,
    Position,
    RoundEntered,
    SimConfig,
    SimResult,
    Simulator,
    Wakeup,
)
from tests.sim._engines import Recorder, beacon, ping_pong_factory, specs

LAN = NetworkConfig(LinkConfig(latency_ms=10))


def beacons(faults: FaultSchedule, until_ms: int = 1_000) -> tuple[list[Recorder], Simulator]:
    engines = [Recorder(beacon(0)), Recorder(beacon(1))]
    sim = Simulator(SimConfig(specs(2), LAN), lambda i, _s: engines[i], faults)
    sim.run(until_ms=until_ms)
    return engines, sim


def beacon_timer(count: int) -> Timer:
    return Timer(TimerKind.NEW_ROUND, count, 0)


def test_a_crashed_node_receives_nothing_and_loses_its_timers() -> None:
    engines, sim = beacons(FaultSchedule().crash(1, 250).restart(1, 520))
    node1 = engines[1]
    assert [t for t, _ in node1.received()] == [10, 110, 210, 610, 710, 810, 910]
    assert node1.starts() == [0, 520]
    assert [t for t, _ in node1.fired()] == [100, 200, 620, 720, 820, 920]
    assert [t for t, _ in engines[0].received()] == [10, 110, 210, 530, 630, 730, 830, 930]
    assert sim.result().drops == {Drop.CRASHED: 3}
    assert sim.status(1) == "up"


def test_crash_at_zero_is_a_late_joiner() -> None:
    engines, _ = beacons(FaultSchedule().crash(1, 0).restart(1, 300), until_ms=400)
    assert engines[1].starts() == [300]
    assert [t for t, _ in engines[1].received()] == [310]


def test_a_paused_node_gets_its_messages_and_timers_on_resume() -> None:
    engines, sim = beacons(FaultSchedule().pause(1, 250, 520))
    node1 = engines[1]
    assert [t for t, _ in node1.received()] == [10, 110, 210, 520, 520, 520, 610, 710, 810, 910]
    assert [d for t, d in node1.received() if t == 520] == [
        b"beacon|0|4|",
        b"beacon|0|5|",
        b"beacon|0|6|",
    ]
    # The timer due at 300 fires late, first (it came due before those messages arrived).
    assert node1.fired()[2] == (520, beacon_timer(3))
    late = node1.events.index(next(e for e in node1.events if e.now_ms == 520))
    assert type(node1.events[late]).__name__ == "TimerFired"
    assert node1.starts() == [0]
    assert [t for t, _ in engines[0].received()] == [10, 110, 210, 530, 630, 730, 830, 930]
    assert sim.result().drops == {}


def test_a_crash_while_paused_discards_what_was_waiting() -> None:
    faults = FaultSchedule().pause(1, 250, 800).crash(1, 500).restart(1, 520)
    engines, sim = beacons(faults)
    assert [t for t, _ in engines[1].received()] == [10, 110, 210, 610, 710, 810, 910]
    assert engines[1].starts() == [0, 520]
    # Two were waiting when it crashed, one more arrived while it was down.
    assert sim.result().drops == {Drop.CRASHED: 3}


# -- the adversary hook --------------------------------------------------------------


def test_the_adversary_sees_every_observable_and_can_crash_a_node_later() -> None:
    seen: list[Observation] = []
    crash_at: list[int] = []

    def adversary(obs: Observation, ctl: AdversaryControl) -> None:
        seen.append(obs)
        if isinstance(obs, MessageSent) and obs.kind == "commit" and not crash_at:
            crash_at.append(ctl.now_ms + 50)
            ctl.crash(2, ctl.now_ms + 50)

    factory = ping_pong_factory(4, timeout_ms=300)
    sim = Simulator(SimConfig(specs(4), LAN), factory, adversary=adversary)
    result = sim.run(until_ms=1_000)
    assert crash_at == [70]
    assert sim.status(2) == "crashed"
    assert [c.time_ms for h in result.heights for c in h.commits if c.node == 2] == [30]
    # Height 3 (node 2 leads) needs a round change; three of four are a quorum.
    assert result.heights[2].round_changes == 1
    assert result.blocks == 6
    assert seen[0] == Wakeup(0, BEGIN)
    kinds = {type(o).__name__ for o in seen}
    assert kinds == {"Wakeup", "MessageSent", "BlockCommitted", "RoundEntered"}
    first_commit = next(o for o in seen if isinstance(o, BlockCommitted))
    assert (first_commit.node, first_commit.block.height, first_commit.now_ms) == (0, 1, 20)
    first_round = next(o for o in seen if isinstance(o, RoundEntered))
    assert (first_round.height, first_round.round) == (1, 0)


def test_wakeups_arrive_with_their_tag() -> None:
    woken: list[Wakeup] = []

    def adversary(obs: Observation, ctl: AdversaryControl) -> None:
        if isinstance(obs, Wakeup):
            woken.append(obs)
            if obs.tag == BEGIN:
                ctl.wake(300, "later")
                ctl.pause(1, 100)
                ctl.resume(1, 200)

    engines = [Recorder(beacon(0)), Recorder()]
    sim = Simulator(SimConfig(specs(2), LAN), lambda i, _s: engines[i], adversary=adversary)
    sim.run(until_ms=400)
    assert woken == [Wakeup(0, BEGIN), Wakeup(300, "later")]
    assert [t for t, _ in engines[1].received()] == [10, 200, 210, 310]


def leader(pos: Position) -> set[int]:
    """The toy protocol's predictable leader: (height - 1 + round) mod 4."""
    return {(pos.height - 1 + pos.round) % 4}


def attacked(reaction_ms: int, mode: OfflineMode = OfflineMode.CRASH) -> SimResult:
    attack = OfflineTargeting(
        leader, start_ms=1_000, end_ms=4_000, reaction_ms=reaction_ms, mode=mode
    )
    sim = Simulator(
        SimConfig(specs(4), LAN), ping_pong_factory(4, timeout_ms=500), adversary=attack
    )
    result = sim.run(until_ms=6_000)
    assert attack.offline == frozenset()
    assert len(attack.history) > 2
    assert all(sim.status(i) == "up" for i in range(4))
    return result


def blocks_between(result: SimResult, start_ms: int, end_ms: int) -> int:
    return sum(1 for t, _ in result.height_over_time() if start_ms <= t < end_ms)


def test_taking_the_predictable_leader_offline_stalls_the_chain() -> None:
    result = attacked(reaction_ms=0)
    assert blocks_between(result, 0, 1_000) >= 7
    assert blocks_between(result, 1_030, 4_000) == 0
    assert blocks_between(result, 4_000, 6_000) >= 5
    assert result.round_changes >= 5
    assert result.safety_violations() == ()


def test_a_slow_attacker_only_slows_the_chain() -> None:
    # 50 ms late, the round-0 leader has its quorum already; but the toy protocol's
    # next leader is the one that just led, so every height needs a round change.
    result = attacked(reaction_ms=50)
    window = [h for h in result.committed() if 1_030 <= (h.first_commit_ms or 0) < 4_000]
    assert len(window) >= 3
    assert all(h.round_changes == 1 for h in window)


def test_pause_mode_holds_the_targets_messages_until_release() -> None:
    # A paused leader finishes its round on release with the pongs that waited for
    # it, so the chain crawls rather than stops; nothing is lost.
    result = attacked(reaction_ms=0, mode=OfflineMode.PAUSE)
    assert 1 <= blocks_between(result, 1_030, 4_000) <= 2
    assert blocks_between(result, 4_000, 6_000) >= 5
    assert result.drops == {}
    assert result.safety_violations() == ()


def test_the_schedule_builder_keeps_order() -> None:
    faults = FaultSchedule().crash(1, 10).pause(2, 5, 9).restart(1, 20)
    assert [(f.kind, f.node, f.at_ms) for f in faults.faults] == [
        ("crash", 1, 10),
        ("pause", 2, 5),
        ("resume", 2, 9),
        ("restart", 1, 20),
    ]


def test_faults_name_existing_nodes() -> None:
    with pytest.raises(ValueError, match="no node 5"):
        Simulator(SimConfig(specs(2)), lambda i, _s: Recorder(), FaultSchedule().crash(5, 0))
