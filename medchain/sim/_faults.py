"""Faults: a fixed schedule of crashes, restarts and pauses, and an adversary that
watches the run and schedules its own.

Crash: the node receives nothing and its pending timers are discarded; a restart
gives the same engine a `Start` again (a restart with a perfect write-ahead log).
Pause: the node receives nothing while paused, but what reaches it waits (unread
TCP buffers) and is delivered on resume, with its timers, late and in order.

The adversary is a callable told of every observable event. It may schedule
faults at the current time or later; `OfflineTargeting` is the predictive-attack
mechanism built on it: keep the nodes a policy names offline, re-asked whenever
the chain's height or round moves, acting after a reaction delay.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from medchain.sim._node import SimNode
from medchain.types import Block

BEGIN = "begin"
"""Tag of the `Wakeup` every adversary gets when the run starts."""


class FaultKind(enum.StrEnum):
    CRASH = "crash"
    RESTART = "restart"
    PAUSE = "pause"
    RESUME = "resume"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    node: int
    at_ms: int


@dataclass(frozen=True, slots=True)
class FaultSchedule:
    """Faults fixed before the run; build with the chaining methods. At one instant,
    faults apply in the order given and before nodes start, so `crash(n, 0)` keeps
    node n down from the beginning (restart it later for a late joiner)."""

    faults: tuple[Fault, ...] = ()

    def _with(self, *faults: Fault) -> FaultSchedule:
        return FaultSchedule(self.faults + faults)

    def crash(self, node: int, at_ms: int) -> FaultSchedule:
        return self._with(Fault(FaultKind.CRASH, node, at_ms))

    def restart(self, node: int, at_ms: int) -> FaultSchedule:
        return self._with(Fault(FaultKind.RESTART, node, at_ms))

    def pause(self, node: int, from_ms: int, to_ms: int) -> FaultSchedule:
        if to_ms < from_ms:
            raise ValueError("a pause must end after it starts")
        return self._with(
            Fault(FaultKind.PAUSE, node, from_ms), Fault(FaultKind.RESUME, node, to_ms)
        )


# -- what an adversary sees ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MessageSent:
    now_ms: int
    node: int
    to: bytes | None
    """Recipient key, or None for a broadcast."""
    kind: str
    data: bytes


@dataclass(frozen=True, slots=True)
class BlockCommitted:
    now_ms: int
    node: int
    block: Block
    round_changes: int


@dataclass(frozen=True, slots=True)
class RoundEntered:
    """A node armed its round timer for a (height, round) beyond its last one. The
    round is in every consensus message in clear, so a network observer knows it;
    reporting it here gives the adversary no extra power."""

    now_ms: int
    node: int
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class Wakeup:
    """A wake-up the adversary asked for (or `BEGIN` at the start of the run)."""

    now_ms: int
    tag: str


Observation = MessageSent | BlockCommitted | RoundEntered | Wakeup


class AdversaryControl(Protocol):
    """What an adversary may do: schedule faults and wake-ups, now or later."""

    @property
    def now_ms(self) -> int: ...

    @property
    def nodes(self) -> tuple[SimNode, ...]: ...

    def crash(self, node: int, at_ms: int) -> None: ...

    def restart(self, node: int, at_ms: int) -> None: ...

    def pause(self, node: int, at_ms: int) -> None: ...

    def resume(self, node: int, at_ms: int) -> None: ...

    def wake(self, at_ms: int, tag: str) -> None: ...


Adversary = Callable[[Observation, AdversaryControl], None]


# -- the re-targeting offline attack ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Position:
    """Where the honest nodes are: the highest (height, round) any has entered, and
    the latest block any has committed."""

    height: int
    round: int
    last_block: Block | None


class OfflineMode(enum.StrEnum):
    CRASH = "crash"
    """Down: messages to the node are lost; released nodes restart."""
    PAUSE = "pause"
    """Stalled: messages wait and are delivered on release."""


Locate = Callable[[Observation], tuple[int, int] | None]
"""Reads a (height, round) from an observation (e.g. by decoding message bytes)."""


class OfflineTargeting:
    """From `start_ms` to `end_ms`, keep offline the nodes `choose(position)` names.

    Whenever the honest nodes' position moves, `choose` is asked again and the new
    set takes effect `reaction_ms` later (nodes leaving the set come back, joining
    ones go down). At `end_ms` every node it took down comes back. By default the
    position comes from round-timer and commit observations of honest nodes; pass
    `locate` to derive it from message bytes instead."""

    def __init__(
        self,
        choose: Callable[[Position], Collection[int]],
        *,
        start_ms: int,
        end_ms: int,
        reaction_ms: int = 0,
        mode: OfflineMode = OfflineMode.CRASH,
        locate: Locate | None = None,
        tag: str = "offline",
    ) -> None:
        if end_ms < start_ms or reaction_ms < 0:
            raise ValueError("need start_ms <= end_ms and reaction_ms >= 0")
        self._choose = choose
        self._start_ms = start_ms
        self._end_ms = end_ms
        self._reaction_ms = reaction_ms
        self._mode = mode
        self._locate = locate
        self._tags = (tag + "/start", tag + "/apply", tag + "/end")
        self._active = False
        self._position: tuple[int, int] | None = None
        self._last_block: Block | None = None
        self._requested: frozenset[int] | None = None
        self._pending: list[tuple[int, frozenset[int]]] = []
        self._offline: frozenset[int] = frozenset()
        self.history: list[tuple[int, frozenset[int]]] = []
        """(time, set taken offline) each time the set changed, for reports and tests."""

    @property
    def offline(self) -> frozenset[int]:
        return self._offline

    def __call__(self, obs: Observation, ctl: AdversaryControl) -> None:
        start_tag, apply_tag, end_tag = self._tags
        if isinstance(obs, Wakeup):
            if obs.tag == BEGIN:
                ctl.wake(max(self._start_ms, obs.now_ms), start_tag)
                ctl.wake(max(self._end_ms, obs.now_ms), end_tag)
            elif obs.tag == start_tag and obs.now_ms < self._end_ms:
                self._active = True
                self._retarget(ctl)
            elif obs.tag == apply_tag and self._active:
                due = [target for at, target in self._pending if at <= obs.now_ms]
                self._pending = [(at, t) for at, t in self._pending if at > obs.now_ms]
                if due:
                    self._apply(due[-1], ctl)
            elif obs.tag == end_tag:
                self._active = False
                self._pending.clear()
                self._apply(frozenset(), ctl)
            return
        if self._track(obs, ctl) and self._active:
            self._retarget(ctl)

    def _track(self, obs: Observation, ctl: AdversaryControl) -> bool:
        honest = not isinstance(obs, Wakeup) and ctl.nodes[obs.node].honest
        if (
            isinstance(obs, BlockCommitted)
            and honest
            and (self._last_block is None or obs.block.height > self._last_block.height)
        ):
            self._last_block = obs.block
        if self._locate is not None:
            found = self._locate(obs)
        elif isinstance(obs, RoundEntered) and honest:
            found = (obs.height, obs.round)
        elif isinstance(obs, BlockCommitted) and honest:
            found = (obs.block.height + 1, 0)
        else:
            found = None
        if found is None or (self._position is not None and found <= self._position):
            return False
        self._position = found
        return True

    def _retarget(self, ctl: AdversaryControl) -> None:
        if self._position is None:
            return
        height, round_ = self._position
        target = frozenset(self._choose(Position(height, round_, self._last_block)))
        if target == self._requested:
            return
        self._requested = target
        at_ms = ctl.now_ms + self._reaction_ms
        if at_ms < self._end_ms:
            self._pending.append((at_ms, target))
            ctl.wake(at_ms, self._tags[1])

    def _apply(self, target: frozenset[int], ctl: AdversaryControl) -> None:
        now = ctl.now_ms
        down, up = (
            (ctl.crash, ctl.restart) if self._mode is OfflineMode.CRASH else (ctl.pause, ctl.resume)
        )
        for node in sorted(self._offline - target):
            up(node, now)
        for node in sorted(target - self._offline):
            down(node, now)
        if target != self._offline:
            self.history.append((now, target))
        self._offline = target
