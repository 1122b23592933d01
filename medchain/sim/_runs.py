"""What `medchain sim` runs: engines and Byzantine roles read from their specs, one run
per engine (under the predictive attack when asked, or swept over node counts), and the
report as data for a table or JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from medchain.consensus import EngineKind
from medchain.sim._chain import Byzantine, Scenario, simulate
from medchain.sim._experiments import AttackReport, Progress, run_with_attack, sweep
from medchain.sim._markdown import attack_markdown, summary_markdown
from medchain.sim._metrics import SimResult
from medchain.types import MedchainError


def parse_engines(text: str) -> list[EngineKind]:
    """Comma-separated engine names, e.g. `pbft,afbft`."""
    try:
        engines = [EngineKind(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        engines = []
    if not engines:
        raise MedchainError(f"unknown engine in {text!r}; use pbft, afbft or dpos")
    return engines


def parse_byzantine(text: str | None, nodes: int) -> tuple[tuple[Byzantine, int], ...]:
    """`KIND:COUNT` roles, comma-separated, that `nodes` validators can hold."""
    if text is None:
        return ()
    roles = []
    for part in text.split(","):
        name, _, count = part.partition(":")
        try:
            kind, number = Byzantine(name.strip()), int(count.strip() or "1")
        except ValueError:
            number = 0
        if number < 1:
            kinds = ", ".join(b.value for b in Byzantine)
            raise MedchainError(
                f"bad --byzantine {part!r}; use KIND:COUNT with KIND in {kinds} and COUNT >= 1"
            )
        roles.append((kind, number))
    if sum(number for _, number in roles) > nodes:
        raise MedchainError(f"--byzantine {text!r} names more nodes than the {nodes} simulated")
    return tuple(roles)


def parse_sweep(text: str, max_nodes: int) -> list[int]:
    """The node counts of a `nodes=4,7,10` sweep."""
    key, _, values = text.partition("=")
    if key.strip() != "nodes":
        raise MedchainError("only --sweep nodes=4,7,10 is supported")
    try:
        counts = [int(v) for v in values.split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or not all(1 <= n <= max_nodes for n in counts):
        raise MedchainError(
            f"bad node counts in {text!r}; give counts from 1 to {max_nodes}, e.g. nodes=4,7,10"
        )
    return counts


@dataclass(frozen=True)
class AttackWindow:
    """The predictive attack over blocks `from_block` to `to_block` of the nominal
    schedule, holding `k` nodes offline, reacting in `reaction_ms`."""

    from_block: int
    to_block: int
    k: int
    reaction_ms: int


@dataclass(frozen=True)
class SimRuns:
    results: list[SimResult]
    attacks: list[tuple[EngineKind, AttackReport]] = dataclasses.field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": [
                {
                    **dataclasses.asdict(r.summary()),
                    "seed": r.seed,
                    "trace_hash": r.trace_hash.hex(),
                    "safety_violations": list(r.safety_violations()),
                }
                for r in self.results
            ],
            "attack": [
                {"engine": e.value, **dataclasses.asdict(rep), "kept": rep.kept}
                for e, rep in self.attacks
            ],
        }

    def markdown(self) -> str:
        """The runs' table, and the attack's when there was one, in Markdown."""
        tables = [summary_markdown(self.results)]
        if self.attacks:
            tables.append(attack_markdown([(e.value, rep) for e, rep in self.attacks]))
        return "\n\n".join(tables)

    def attack_lines(self) -> list[str]:
        """A line per engine: its attack window, blocks in and around it, rates kept."""
        lines = []
        for engine, rep in self.attacks:
            window = f"{rep.window_start_ms / 1000:.0f}-{rep.window_end_ms / 1000:.0f} s"
            counts = (
                f"{rep.blocks_before} before, {rep.blocks_during} during, {rep.blocks_after} after"
            )
            rates = (
                f"{rep.rate_during_per_min:.1f} blocks/min under attack vs "
                f"{rep.rate_before_per_min:.1f} before ({rep.kept:.0%} kept)"
            )
            lines.append(f"{engine.value}: attack window {window}: blocks {counts}; {rates}")
        return lines

    def check_safety(self) -> None:
        """Raise if any run broke safety (two blocks committed at one height)."""
        violations = [r for r in self.results if r.safety_violations()]
        if violations:
            raise MedchainError(f"safety violated in {len(violations)} run(s)")


def run_engines(
    base: Scenario, engines: Sequence[EngineKind], attack: AttackWindow | None = None
) -> SimRuns:
    """`base` once per engine, under `attack` if given."""
    results, attacks = [], []
    for engine in engines:
        scenario = dataclasses.replace(base, engine=engine)
        if attack is None:
            results.append(simulate(scenario))
            continue
        result, report = run_with_attack(
            scenario, attack.from_block, attack.to_block, attack.k, attack.reaction_ms
        )
        results.append(result)
        attacks.append((engine, report))
    return SimRuns(results, attacks)


def run_reactions(
    base: Scenario, engines: Sequence[EngineKind], attack: AttackWindow, reactions: Sequence[int]
) -> SimRuns:
    """`base` once per engine under `attack`, for each attacker reaction time."""
    results, attacks = [], []
    for reaction_ms in reactions:
        runs = run_engines(base, engines, dataclasses.replace(attack, reaction_ms=reaction_ms))
        results.extend(runs.results)
        attacks.extend(runs.attacks)
    return SimRuns(results, attacks)


def run_sweep(
    base: Scenario,
    engines: Sequence[EngineKind],
    node_counts: Sequence[int],
    progress: Progress | None = None,
) -> SimRuns:
    """`base` for every engine and node count."""
    return SimRuns(sweep(base, engines, node_counts, progress))
