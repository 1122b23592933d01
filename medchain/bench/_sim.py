"""Simulator speed: blocks of simulated time committed per second of wall time,
with the real engines over the real (in-memory) ledger. A benchmark, not a test."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from medchain.consensus import EngineKind
from medchain.sim import Scenario, simulate


@dataclass(frozen=True)
class SimSpeed:
    engine: str
    nodes: int
    blocks: int
    wall_s: float
    rewards: bool

    @property
    def blocks_per_s(self) -> float:
        return self.blocks / self.wall_s


def run_sim_bench(nodes: int = 4, blocks: int = 300, seed: int = 1) -> list[SimSpeed]:
    """Empty blocks; each engine once with the opening vote and vesting rewards (the
    full ledger work) and once with neither (consensus and bare block execution)."""
    speeds = []
    for engine in EngineKind:
        for rewards in (True, False):
            scenario = Scenario(engine=engine, nodes=nodes, blocks=blocks, seed=seed)
            if not rewards:
                scenario = replace(scenario, block_reward=0, stake=0)
            began = time.perf_counter()
            result = simulate(scenario)
            speeds.append(
                SimSpeed(engine.value, nodes, result.blocks, time.perf_counter() - began, rewards)
            )
    return speeds
