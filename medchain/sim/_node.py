"""Simulated nodes: who they are (key, index, name, honest or not) and the engine
the caller's factory built for them. The simulator knows engines only through the
sans-IO contract, so it never imports the engines or the ledger."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from medchain.consensus import Action, Event


@dataclass(frozen=True, slots=True)
class Delayed:
    """Simulator-only action: carry out `action` `delay_ms` from now (if the node is
    still up then). Byzantine wrappers use it to act later without a timer of the
    engine's."""

    action: Action
    delay_ms: int


SimAction = Action | Delayed


class Engine(Protocol):
    """A consensus engine as the simulator drives it (every real engine fits)."""

    def handle(self, event: Event) -> Sequence[SimAction]: ...


Behaviour = Callable[[Engine, random.Random], Engine]
"""Wraps an honest engine into a Byzantine one; gets a random stream of its own."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node the caller asks for. Two specs with one key are Twins."""

    name: str
    key: bytes
    """Ed25519 public key: what `Send.to` addresses."""
    behaviour: Behaviour | None = None
    """Applied to the factory's engine (`silent()`, `replay()`, `forge()`, `rewrite()`)."""
    byzantine: bool = False
    """Mark a node whose factory-built engine is itself faulty."""


NodeFactory = Callable[[int, NodeSpec], Engine]
"""Builds the engine (with its own app, keys and store) for node `index`."""


@dataclass(frozen=True, slots=True)
class SimNode:
    index: int
    name: str
    key: bytes
    honest: bool
    """False for a wrapped or marked node and for both of a pair of Twins: only
    honest nodes count in the safety check and the latency figures."""
    engine: Engine


def engine_stats(engine: object) -> dict[str, int]:
    """The integer counters of an engine's optional `stats` attribute (MessageStats)."""
    stats = getattr(engine, "stats", None)
    if stats is None:
        return {}
    counters: dict[str, int] = {}
    for name in sorted(dir(stats)):
        if name.startswith("_"):
            continue
        value = getattr(stats, name, None)
        if type(value) is int:
            counters[name] = value
    return counters
