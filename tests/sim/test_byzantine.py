"""Byzantine wrappers: silent, replay, forge and action rewriting, with no knowledge
of message formats."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from medchain.consensus._api import Broadcast, Event, SetTimer, Start, Timer, TimerKind
from medchain.sim import (
    FORGE_KIND,
    REPLAY_KIND,
    FaultSchedule,
    LinkConfig,
    NetworkConfig,
    NodeSpec,
    SimAction,
    SimConfig,
    SimResult,
    Simulator,
    engine_stats,
    forge,
    forgery,
    replay,
    rewrite,
    silent,
)
from tests.sim._engines import Recorder, beacon, key, ping_pong_factory, specs

LAN = NetworkConfig(LinkConfig(latency_ms=10))


def run(
    engines: Sequence[Recorder], byzantine: dict[int, NodeSpec], until_ms: int, seed: int = 0
) -> SimResult:
    nodes = tuple(byzantine.get(i, spec) for i, spec in enumerate(specs(len(engines))))
    sim = Simulator(SimConfig(nodes, LAN, seed=seed), lambda i, _s: engines[i])
    assert [n.honest for n in sim.nodes] == [i not in byzantine for i in range(len(engines))]
    return sim.run(until_ms=until_ms)


def test_silent_sends_nothing_but_keeps_its_timers() -> None:
    inner = Recorder(beacon(1))
    engines = [Recorder(), inner]
    result = run(engines, {1: NodeSpec("n1", key(1), silent())}, until_ms=350)
    assert engines[0].received() == []
    assert [t for t, _ in inner.fired()] == [100, 200, 300]
    assert result.traffic == ()


def test_replay_resends_each_message_it_received_once_after_a_delay() -> None:
    def twice(event: Event) -> list[SimAction]:
        if isinstance(event, Start):
            return [Broadcast(b"hello", "hi"), Broadcast(b"hello", "hi")]
        return []

    engines = [Recorder(twice), Recorder(), Recorder()]
    result = run(engines, {1: NodeSpec("n1", key(1), replay(50))}, until_ms=500)
    assert engines[2].received() == [(10, b"hello"), (10, b"hello"), (70, b"hello")]
    assert engines[0].received() == [(70, b"hello")]
    by_kind = {t.kind: t.messages for t in result.traffic}
    assert by_kind == {"hi": 4, REPLAY_KIND: 2}


def test_a_crash_voids_pending_replays() -> None:
    engines = [Recorder(beacon(0, period_ms=1_000)), Recorder(), Recorder()]
    nodes = (*specs(1), NodeSpec("n1", key(1), replay(50)), *specs(3)[2:])
    faults = FaultSchedule().crash(1, 30)
    sim = Simulator(SimConfig(nodes, LAN), lambda i, _s: engines[i], faults)
    sim.run(until_ms=500)
    assert engines[2].received() == [(10, b"beacon|0|1|")]


def test_forge_sends_garbage_and_mangled_copies() -> None:
    engines = [Recorder(beacon(0, size=64)), Recorder(), Recorder()]
    result = run(engines, {1: NodeSpec("n1", key(1), forge(copies=2))}, until_ms=450)
    real = {d for _, d in engines[1].received()}
    forged = [d for _, d in engines[2].received() if d not in real]
    # Start plus five beacons received, two forgeries each, to two peers.
    assert {t.kind: t.messages for t in result.traffic}[FORGE_KIND] == 2 * 6 * 2
    assert len(forged) >= 8
    assert any(len(d) < 64 and any(r.startswith(d) for r in real) for d in forged)
    assert any(
        len(d) == 64 and any(sum(a != b for a, b in zip(d, r, strict=True)) == 1 for r in real)
        for d in forged
    )


def test_honest_nodes_shrug_off_a_forger() -> None:
    nodes = (*specs(4)[:3], NodeSpec("n3", key(3), forge()))
    sim = Simulator(SimConfig(nodes, LAN, seed=3), ping_pong_factory(4, timeout_ms=300))
    result = sim.run(until_ms=2_000)
    assert result.blocks >= 10
    assert result.safety_violations() == ()
    assert sum(s["dropped_malformed"] for s in result.engine_stats[:3]) > 0


def test_forgery_modes() -> None:
    rng = random.Random(1)
    sample = bytes(range(40))
    outputs = [forgery(rng, sample) for _ in range(300)]
    truncated = [o for o in outputs if len(o) < len(sample) and sample.startswith(o)]
    flipped = [
        o
        for o in outputs
        if len(o) == len(sample)
        and bin(int.from_bytes(o, "big") ^ int.from_bytes(sample, "big")).count("1") == 1
    ]
    assert len(truncated) > 50 and len(flipped) > 50
    assert len(outputs) - len(truncated) - len(flipped) > 50  # garbage
    assert all(forgery(rng, b"") for _ in range(20))  # nothing to mangle: garbage
    assert [forgery(random.Random(5), sample) for _ in range(3)] == [
        forgery(random.Random(5), sample) for _ in range(3)
    ]


def test_rewrite_changes_what_the_engine_does() -> None:
    def doubled(event: Event, actions: Sequence[SimAction]) -> list[SimAction]:
        out: list[SimAction] = []
        for action in actions:
            out.append(action)
            if isinstance(action, Broadcast):
                out.append(Broadcast(action.data + b"!", "equivocation"))
        return out

    engines = [Recorder(beacon(0, period_ms=1_000)), Recorder()]
    result = run(engines, {0: NodeSpec("n0", key(0), rewrite(doubled))}, until_ms=100)
    assert engines[1].received() == [(10, b"beacon|0|1|"), (10, b"beacon|0|1|!")]
    assert {t.kind for t in result.traffic} == {"beacon", "equivocation"}


def test_wrappers_forward_the_engines_stats() -> None:
    engines = ping_pong_factory(4)(0, specs(4)[0])
    wrapped = silent()(engines, random.Random(0))
    assert engine_stats(wrapped) == {"dropped_malformed": 0, "received": 0}
    assert engine_stats(Recorder()) == {}


def test_bad_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        replay(-1)
    with pytest.raises(ValueError):
        forge(copies=0)


def test_timers_survive_silence() -> None:
    timer = Timer(TimerKind.ROUND, 1, 0)
    inner = Recorder(lambda e: [SetTimer(timer, 5), Broadcast(b"x", "x")])
    assert silent()(inner, random.Random(0)).handle(Start(0)) == [SetTimer(timer, 5)]
