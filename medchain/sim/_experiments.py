"""Paper 000's experiments as functions: one run, a run under the predictive
attack with its window accounted for, and sweeps over node counts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from medchain.consensus import EngineKind
from medchain.sim._chain import Attack, Scenario, simulate
from medchain.sim._metrics import KB, SimResult
from medchain.sim._report import new_figure, save_figure

Progress = Callable[[str], None]


def nominal_block_ms(scenario: Scenario) -> int:
    """Time per block of the plain schedule (the interval plus three network hops:
    proposal, prepare, commit). Maps `--attack-from/--attack-to` blocks to one time
    window shared by every engine, so their runs are compared over the same span."""
    return scenario.block_interval_ms + 3 * scenario.latency_ms


@dataclass(frozen=True)
class AttackReport:
    window_start_ms: int
    window_end_ms: int
    blocks_before: int
    blocks_during: int
    blocks_after: int
    rate_before_per_min: float
    rate_during_per_min: float
    reaction_ms: int = 0
    """How long the attacker took to act on what it saw."""

    @property
    def kept(self) -> float:
        """Block rate under attack as a share of the rate before it."""
        return (
            self.rate_during_per_min / self.rate_before_per_min if self.rate_before_per_min else 0.0
        )


def attack_report(result: SimResult, attack: Attack) -> AttackReport:
    times = [h.first_commit_ms for h in result.heights if h.first_commit_ms is not None]
    before = sum(1 for t in times if t < attack.from_ms)
    during = sum(1 for t in times if attack.from_ms <= t < attack.to_ms)
    after = sum(1 for t in times if t >= attack.to_ms)
    minutes_before = max(attack.from_ms - result.start_ms, 1) / 60_000
    minutes_during = max(attack.to_ms - attack.from_ms, 1) / 60_000
    return AttackReport(
        attack.from_ms,
        attack.to_ms,
        before,
        during,
        after,
        before / minutes_before,
        during / minutes_during,
        attack.reaction_ms,
    )


def run_with_attack(
    scenario: Scenario, from_block: int, to_block: int, k: int, reaction_ms: int
) -> tuple[SimResult, AttackReport]:
    """Run for `scenario.blocks` nominal block times with the attack over the window."""
    per_block = nominal_block_ms(scenario)
    attack = Attack(k, from_block * per_block, to_block * per_block, reaction_ms)
    attacked = replace(scenario, attack=attack, run_to_end=True, max_ms=scenario.blocks * per_block)
    result = simulate(attacked)
    return result, attack_report(result, attack)


def sweep(
    base: Scenario,
    engines: Sequence[EngineKind],
    node_counts: Sequence[int],
    progress: Progress | None = None,
) -> list[SimResult]:
    results = []
    for engine in engines:
        for nodes in node_counts:
            if progress:
                progress(f"{engine.value} n={nodes}")
            results.append(simulate(replace(base, engine=engine, nodes=nodes)))
    return results


def plot_sweep(results: Sequence[SimResult], path: str | Path, title: str = "") -> Path:
    """Block time, commit latency and traffic against the number of nodes, per engine."""
    fig = new_figure()
    axes = fig.subplots(1, 3)
    by_engine: dict[str, list[SimResult]] = {}
    for result in results:
        by_engine.setdefault(result.label, []).append(result)
    for label, runs in by_engine.items():
        runs = sorted(runs, key=lambda r: len(r.nodes))
        xs = [len(r.nodes) for r in runs]
        summaries = [r.summary() for r in runs]
        axes[0].plot(xs, [s.mean_block_time_ms or 0 for s in summaries], marker="o", label=label)
        axes[1].plot(xs, [s.latency_p50_ms or 0 for s in summaries], marker="o", label=label)
        axes[2].plot(xs, [r.per_second(r.bytes_sent) / KB for r in runs], marker="o", label=label)
    for ax, ylabel in zip(
        axes, ("mean block time (ms)", "commit latency p50 (ms)", "traffic (KB/s)"), strict=True
    ):
        ax.set_xlabel("validators")
        ax.set_ylabel(ylabel)
        ax.legend()
    return save_figure(fig, path, title)
