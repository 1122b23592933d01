"""The real chain in the simulator: determinism, safety under Byzantine nodes and
a hostile network (Twins included), liveness, evidence reaching the chain, and
the predictive attack."""

from __future__ import annotations

import dataclasses
import random
from typing import TypedDict

import pytest

from medchain.app import get_ban, get_stake
from medchain.consensus import EngineKind
from medchain.sim import FaultSchedule, Partition
from medchain.sim._chain import Attack, Byzantine, Scenario, build, simulate

ENGINES = list(EngineKind)


class Timing(TypedDict):
    block_interval_ms: int
    round_timeout_ms: int
    proposal_window_ms: int


FAST = Timing(block_interval_ms=100, round_timeout_ms=600, proposal_window_ms=150)


@pytest.mark.parametrize("engine", ENGINES)
def test_one_seed_gives_a_byte_identical_trace(engine: EngineKind) -> None:
    scenario = Scenario(engine=engine, nodes=4, blocks=8, seed=7, loss_ppm=50_000, **FAST)
    first, second = simulate(scenario), simulate(scenario)
    assert first.trace_hash == second.trace_hash
    assert first.blocks == second.blocks >= 8
    other = simulate(Scenario(engine=engine, nodes=4, blocks=8, seed=8, loss_ppm=50_000, **FAST))
    assert other.trace_hash != first.trace_hash


def test_a_processing_cost_per_message_slows_the_run_the_same_way_each_time() -> None:
    base = Scenario(engine=EngineKind.PBFT, nodes=4, blocks=6, seed=3, **FAST)
    free = simulate(base)
    costly = simulate(dataclasses.replace(base, cpu_us_per_message=5_000))
    assert costly.trace_hash != free.trace_hash
    assert costly.end_ms > free.end_ms  # the same blocks; each message waits its turn
    again = simulate(dataclasses.replace(base, cpu_us_per_message=5_000))
    assert again.trace_hash == costly.trace_hash
    assert simulate(base).trace_hash == free.trace_hash


@pytest.mark.parametrize("engine", ENGINES)
def test_every_honest_node_has_the_same_blocks_and_state_roots(engine: EngineKind) -> None:
    run = build(Scenario(engine=engine, nodes=7, blocks=12, seed=3, **FAST))
    result = run.run()
    assert result.safety_violations() == ()
    tip = min(app.height for app in run.apps)
    assert tip >= 12
    for height in range(1, tip + 1):
        blocks = {app.block_at(height) for app in run.apps}
        assert len({b.header.state_root for b in blocks if b}) == 1
        assert len({b.certificate.block_hash for b in blocks if b}) == 1


def _random_scenario(engine: EngineKind, seed: int) -> Scenario:
    """A hostile setting: 4 or 7 validators, f of them Byzantine (mixed behaviours,
    Twins included), random delays and losses, and a partition that heals."""
    rng = random.Random(seed)
    nodes = rng.choice([4, 4, 7])
    f = (nodes - 1) // 3
    roles: dict[Byzantine, int] = {}
    for _ in range(f):
        kind = rng.choice(list(Byzantine))
        roles[kind] = roles.get(kind, 0) + 1
    population = nodes + roles.get(Byzantine.TWIN, 0)
    split = frozenset(rng.sample(range(population), rng.randrange(1, population // 2 + 1)))
    start = rng.randrange(0, 3_000)
    return Scenario(
        engine=engine,
        nodes=nodes,
        blocks=4,
        max_ms=20_000,
        seed=seed,
        latency_ms=rng.randrange(1, 80),
        jitter_ms=rng.randrange(0, 300),
        loss_ppm=rng.choice([0, 10_000, 100_000, 300_000]),
        byzantine=tuple(roles.items()),
        partitions=(Partition((split,), start, start + rng.randrange(100, 4_000)),),
        committee_size=nodes,
        block_interval_ms=50,
        round_timeout_ms=300,
        max_round_timeout_ms=2_000,
        proposal_window_ms=100,
    )


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES)
def test_safety_over_a_thousand_hostile_runs(engine: EngineKind) -> None:
    committed = 0
    for seed in range(1_000):
        result = simulate(_random_scenario(engine, seed))
        assert result.safety_violations() == (), f"seed {seed}"
        committed += result.blocks
    assert committed > 1_000  # the runs did decide blocks; safety was not vacuous


@pytest.mark.parametrize("engine", ENGINES)
def test_twins_never_split_the_honest_nodes(engine: EngineKind) -> None:
    for seed in range(15):
        n = 4
        scenario = Scenario(
            engine=engine,
            nodes=n,
            blocks=6,
            max_ms=20_000,
            seed=seed,
            byzantine=((Byzantine.TWIN, 1),),
            # the twins (node 3 and its copy, index 4) each see a different half
            partitions=(Partition((frozenset({0, 3}), frozenset({1, 4})), 0, 3_000),),
            **FAST,
        )
        result = simulate(scenario)
        assert result.safety_violations() == (), f"seed {seed}"


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("fault", ["crash", "silent"])
def test_live_with_f_faulty_nodes(engine: EngineKind, fault: str) -> None:
    n = 7  # f = 2
    faults = FaultSchedule().crash(5, 500).crash(6, 500) if fault == "crash" else None
    byzantine = ((Byzantine.SILENT, 2),) if fault == "silent" else ()
    scenario = Scenario(
        engine=engine,
        nodes=n,
        blocks=15,
        max_ms=60_000,
        seed=11,
        faults=faults,
        byzantine=byzantine,
        committee_size=7,
        **FAST,
    )
    run = build(scenario)
    result = run.run()
    honest = [i for i in range(5)]
    assert min(run.apps[i].height for i in honest) >= 15
    assert result.safety_violations() == ()


@pytest.mark.parametrize("engine", ENGINES)
def test_blocks_resume_after_a_partition_heals(engine: EngineKind) -> None:
    cut = Partition((frozenset({0, 1}), frozenset({2, 3})), 1_000, 6_000)
    run = build(
        Scenario(
            engine=engine, nodes=4, blocks=30, max_ms=60_000, seed=5, partitions=(cut,), **FAST
        )
    )
    result = run.run()
    during = [h for h in result.heights if h.first_commit_ms and 1_500 < h.first_commit_ms < 6_000]
    after = [h for h in result.heights if h.first_commit_ms and h.first_commit_ms > 6_000]
    assert not during  # no side has a quorum
    assert len(after) >= 10
    assert min(app.height for app in run.apps) >= 30
    assert result.safety_violations() == ()


def test_an_equivocating_primary_is_slashed_and_banned_on_chain() -> None:
    scenario = Scenario(
        engine=EngineKind.AFBFT,
        nodes=4,
        blocks=15,
        max_ms=60_000,
        seed=2,
        byzantine=((Byzantine.EQUIVOCATE, 1),),
        **FAST,
    )
    run = build(scenario)
    result = run.run()
    assert result.safety_violations() == ()
    assert run.evidence, "nobody reported the equivocation"
    cheater = run.keys[3]
    app = run.apps[0]  # an honest node
    state = app.ledger.state
    punished_at = next(
        h
        for h in range(1, app.height + 1)
        for tx in app.block_at(h).txs  # type: ignore[union-attr]
        if tx.method == "consensus.report_equivocation"
    )
    assert get_ban(state, cheater.address) == punished_at + 20
    # it had bonded 100,000 and voted it all for itself: 10 % of both is burnt
    stake = get_stake(state, cheater.address)
    assert stake.bonded == 90_000 and stake.voted == 90_000
    if app.height <= punished_at + 20:
        assert cheater.public_key not in app.primary_candidates()


@pytest.mark.parametrize(
    ("engine", "keeps_going"),
    [(EngineKind.PBFT, False), (EngineKind.DPOS, False), (EngineKind.AFBFT, True)],
)
def test_the_predictive_attack(engine: EngineKind, keeps_going: bool) -> None:
    """k = f = 2 of 7 nodes taken offline as the attacker predicts the primaries."""
    scenario = Scenario(
        engine=engine,
        nodes=7,
        seed=4,
        max_ms=45_000,
        run_to_end=True,
        committee_size=4,
        attack=Attack(k=2, from_ms=15_000, to_ms=30_000, reaction_ms=500),
        block_interval_ms=500,
        round_timeout_ms=1_000,
    )
    result = build(scenario).run()
    times = [h.first_commit_ms for h in result.heights if h.first_commit_ms is not None]
    before = sum(1 for t in times if t < 15_000)
    during = sum(1 for t in times if 15_000 <= t < 30_000)
    assert before >= 15
    if keeps_going:
        assert during >= 0.8 * before
    else:
        assert during <= 0.2 * before
    assert result.safety_violations() == ()
