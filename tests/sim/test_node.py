"""Node identities and engine counters."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.sim import NodeSpec, SimConfig, Simulator, engine_stats, silent
from tests.sim._engines import Recorder, key, specs


@dataclass
class Counters:
    received: int = 3
    dropped_stale: int = 1
    label: str = "not a counter"
    flag: bool = True


class WithStats(Recorder):
    def __init__(self) -> None:
        super().__init__()
        self.stats = Counters()


def test_engine_stats_reads_integer_fields_only() -> None:
    assert engine_stats(WithStats()) == {"dropped_stale": 1, "received": 3}
    assert engine_stats(Recorder()) == {}


def test_who_counts_as_honest() -> None:
    nodes = (
        NodeSpec("plain", key(0)),
        NodeSpec("wrapped", key(1), silent()),
        NodeSpec("marked", key(2), byzantine=True),
        NodeSpec("twin-a", key(3)),
        NodeSpec("twin-b", key(3)),
    )
    sim = Simulator(SimConfig(nodes), lambda i, _s: Recorder())
    assert [n.honest for n in sim.nodes] == [True, False, False, False, False]
    assert [n.name for n in sim.nodes] == ["plain", "wrapped", "marked", "twin-a", "twin-b"]


def test_the_factory_is_told_index_and_spec() -> None:
    calls: list[tuple[int, str]] = []

    def factory(index: int, spec: NodeSpec) -> Recorder:
        calls.append((index, spec.name))
        return Recorder()

    Simulator(SimConfig(specs(3)), factory)
    assert calls == [(0, "n0"), (1, "n1"), (2, "n2")]
