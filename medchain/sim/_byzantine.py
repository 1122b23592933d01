"""Byzantine behaviours that need no knowledge of message formats.

Each is a `Behaviour`: it wraps the honest engine the factory built, so a faulty
node keeps a real engine's timing and only its output changes. Behaviours that
need to understand messages (an equivocating primary) are written with `rewrite`,
an action-rewriting function, by whoever knows the format.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence

from medchain.consensus import Broadcast, Event, MessageReceived, Send, SetTimer, Start
from medchain.sim._node import Behaviour, Delayed, Engine, SimAction

REPLAY_KIND = "replay"
FORGE_KIND = "forge"

Rewriter = Callable[[Event, Sequence[SimAction]], Sequence[SimAction]]
"""Given the event and what the honest engine answered, what the node does instead."""


class EngineWrapper:
    """An engine around an engine; forwards the inner engine's `stats`."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner

    @property
    def stats(self) -> object:
        return getattr(self.inner, "stats", None)

    def handle(self, event: Event) -> Sequence[SimAction]:
        return self.inner.handle(event)


def _timers_only(actions: Sequence[SimAction]) -> list[SimAction]:
    return [a for a in actions if isinstance(a, SetTimer)]


class _Rewritten(EngineWrapper):
    def __init__(self, inner: Engine, fn: Rewriter) -> None:
        super().__init__(inner)
        self._fn = fn

    def handle(self, event: Event) -> Sequence[SimAction]:
        return self._fn(event, self.inner.handle(event))


class _Silent(EngineWrapper):
    def handle(self, event: Event) -> Sequence[SimAction]:
        return _timers_only(self.inner.handle(event))


class _Replay(EngineWrapper):
    def __init__(self, inner: Engine, delay_ms: int, also_honest: bool) -> None:
        super().__init__(inner)
        self._delay_ms = delay_ms
        self._also_honest = also_honest
        self._seen: set[bytes] = set()

    def handle(self, event: Event) -> Sequence[SimAction]:
        actions = self.inner.handle(event)
        out = list(actions) if self._also_honest else _timers_only(actions)
        if isinstance(event, MessageReceived):
            digest = hashlib.sha256(event.data).digest()
            if digest not in self._seen:
                self._seen.add(digest)
                out.append(Delayed(Broadcast(event.data, REPLAY_KIND), self._delay_ms))
        return out


def forgery(rng: random.Random, sample: bytes, max_garbage: int = 256) -> bytes:
    """Random garbage, or `sample` truncated or with one bit flipped (a third each)."""
    mode = rng.randrange(3)
    if mode == 1 and sample:
        return sample[: rng.randrange(len(sample))]
    if mode == 2 and sample:
        bit = rng.randrange(len(sample) * 8)
        flipped = bytearray(sample)
        flipped[bit // 8] ^= 1 << (bit % 8)
        return bytes(flipped)
    return rng.randbytes(rng.randint(1, max_garbage))


class _Forge(EngineWrapper):
    def __init__(self, inner: Engine, rng: random.Random, copies: int, also_honest: bool) -> None:
        super().__init__(inner)
        self._rng = rng
        self._copies = copies
        self._also_honest = also_honest

    def handle(self, event: Event) -> Sequence[SimAction]:
        actions = self.inner.handle(event)
        out = list(actions) if self._also_honest else _timers_only(actions)
        samples = [a.data for a in actions if isinstance(a, Broadcast | Send)]
        if isinstance(event, MessageReceived):
            samples.append(event.data)
        if isinstance(event, Start | MessageReceived):
            for _ in range(self._copies):
                sample = samples[self._rng.randrange(len(samples))] if samples else b""
                out.append(Broadcast(forgery(self._rng, sample), FORGE_KIND))
        return out


def rewrite(fn: Rewriter) -> Behaviour:
    """Wrap an engine with an action-rewriting function (e.g. an equivocating primary)."""
    return lambda engine, _rng: _Rewritten(engine, fn)


def silent() -> Behaviour:
    """Drops everything but its timers: crashed as far as peers can tell, yet running."""
    return lambda engine, _rng: _Silent(engine)


def replay(delay_ms: int, *, also_honest: bool = True) -> Behaviour:
    """Re-broadcasts every distinct message it ever received, `delay_ms` later, as kind
    "replay"; with `also_honest` it otherwise behaves like its engine."""
    if delay_ms < 0:
        raise ValueError("delay_ms must not be negative")
    return lambda engine, _rng: _Replay(engine, delay_ms, also_honest)


def forge(copies: int = 1, *, also_honest: bool = True) -> Behaviour:
    """On start and on every message received, broadcasts `copies` forgeries (kind
    "forge"): random bytes, or truncated or bit-flipped copies of real messages it
    received or was about to send."""
    if copies < 1:
        raise ValueError("copies must be at least 1")
    return lambda engine, rng: _Forge(engine, rng, copies, also_honest)
