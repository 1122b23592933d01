"""Stand-in engines for the simulator tests: they speak the sans-IO contract with
made-up text messages, so the simulator is tested without the real engines."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medchain.consensus._api import (
    Action,
    Broadcast,
    Committed,
    Event,
    MessageReceived,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    TimerKind,
)
from medchain.sim import NodeSpec, SimAction
from medchain.types import ZERO_HASH, Block, Certificate, Header, sha256

CHAIN_ID = "sim-test"


def key(i: int) -> bytes:
    return bytes([i + 1]) * 32


def specs(n: int, **overrides: NodeSpec) -> tuple[NodeSpec, ...]:
    """n honest nodes named n0.. with keys key(i); `overrides` by name."""
    out = []
    for i in range(n):
        spec = NodeSpec(f"n{i}", key(i))
        out.append(overrides.get(spec.name, spec))
    return tuple(out)


def make_block(height: int, time_ms: int, proposer: bytes, round_: int, salt: bytes = b"") -> Block:
    header = Header(
        CHAIN_ID,
        height,
        ZERO_HASH,
        time_ms,
        proposer[:20],
        ZERO_HASH,
        ZERO_HASH,
        sha256(salt),
    )
    return Block(header, (), Certificate(height, round_, b"", ()))


Script = Callable[[Event], Sequence[SimAction]]


class Recorder:
    """Records every event it gets and answers with `script(event)`."""

    def __init__(self, script: Script | None = None) -> None:
        self.events: list[Event] = []
        self.script = script

    def handle(self, event: Event) -> Sequence[SimAction]:
        self.events.append(event)
        return list(self.script(event)) if self.script is not None else []

    def received(self) -> list[tuple[int, bytes]]:
        return [(e.now_ms, e.data) for e in self.events if isinstance(e, MessageReceived)]

    def fired(self) -> list[tuple[int, Timer]]:
        return [(e.now_ms, e.timer) for e in self.events if isinstance(e, TimerFired)]

    def starts(self) -> list[int]:
        return [e.now_ms for e in self.events if isinstance(e, Start)]


def beacon(index: int, period_ms: int = 100, size: int = 0) -> Script:
    """Broadcast "beacon|index|count" on start and every `period_ms` after."""
    count = 0

    def script(event: Event) -> list[SimAction]:
        nonlocal count
        if isinstance(event, Start | TimerFired):
            count += 1
            data = f"beacon|{index}|{count}|".encode().ljust(size, b".")
            return [
                Broadcast(data, "beacon"),
                SetTimer(Timer(TimerKind.NEW_ROUND, count, 0), period_ms),
            ]
        return []

    return script


@dataclass
class Stats:
    received: int = 0
    dropped_malformed: int = 0


class PingPong:
    """A toy leader protocol: the leader of (height, round), (height - 1 + round) mod
    n, pings; nodes pong back; at `quorum` pongs (itself included) the leader commits
    and broadcasts the block (its `salt` makes its blocks its own); a round timer
    passes leadership on. Messages carry the validator index of their sender, so
    Twins share one."""

    def __init__(
        self,
        me: int,
        n: int,
        *,
        quorum: int | None = None,
        timeout_ms: int = 1000,
        interval_ms: int = 100,
        salt: str = "",
    ) -> None:
        self.me = me
        self.n = n
        self.quorum = quorum if quorum is not None else 2 * n // 3 + 1
        self.timeout_ms = timeout_ms
        self.interval_ms = interval_ms
        self.salt = salt
        self.height = 1
        self.round = 0
        self.pongs: set[int] = set()
        self.decided = False
        self.stats = Stats()

    def leader(self) -> int:
        return (self.height - 1 + self.round) % self.n

    def handle(self, event: Event) -> list[Action]:
        if isinstance(event, Start):
            return self._enter()
        if isinstance(event, TimerFired):
            t = event.timer
            if t.kind is TimerKind.ROUND and (t.height, t.round) == (self.height, self.round):
                self.round += 1
                return self._enter()
            if t.kind is TimerKind.NEW_ROUND and t.height == self.height:
                return self._enter()
            return []
        if isinstance(event, MessageReceived):
            self.stats.received += 1
            return self._message(event.now_ms, event.data)
        return []

    def _enter(self) -> list[Action]:
        self.pongs = set()
        self.decided = False
        actions: list[Action] = [
            SetTimer(Timer(TimerKind.ROUND, self.height, self.round), self.timeout_ms)
        ]
        if self.leader() == self.me:
            actions.append(Broadcast(f"ping|{self.height}|{self.round}|{self.me}".encode(), "ping"))
        return actions

    def _message(self, now_ms: int, data: bytes) -> list[Action]:
        try:
            kind, *fields = data.decode().split("|")
            salt = fields.pop() if kind == "commit" and fields else ""
            nums = [int(f) for f in fields]
        except (UnicodeDecodeError, ValueError):
            self.stats.dropped_malformed += 1
            return []
        if kind == "ping" and len(nums) == 3:
            height, round_, leader = nums
            if (height, round_) < (self.height, self.round):
                return []
            actions: list[Action] = []
            if (height, round_) > (self.height, self.round):
                self.height, self.round = height, round_
                self.pongs, self.decided = set(), False
                timer = Timer(TimerKind.ROUND, height, round_)
                actions.append(SetTimer(timer, self.timeout_ms))
            pong = f"pong|{height}|{round_}|{self.me}".encode()
            return [*actions, Send(key(leader), pong, "pong")]
        if kind == "pong" and len(nums) == 3:
            height, round_, voter = nums
            if (height, round_) != (self.height, self.round) or self.leader() != self.me:
                return []
            self.pongs.add(voter)
            if self.decided or len(self.pongs | {self.me}) < self.quorum:
                return []
            self.decided = True
            msg = f"commit|{height}|{round_}|{self.me}|{now_ms}|{self.salt}".encode()
            block = make_block(height, now_ms, key(self.me), round_, self.salt.encode())
            return [Broadcast(msg, "commit"), *self._commit(block)]
        if kind == "commit" and len(nums) == 4:
            height, round_, leader, time_ms = nums
            if height < self.height:
                return []
            self.height = height
            block = make_block(height, time_ms, key(leader), round_, salt.encode())
            return self._commit(block)
        self.stats.dropped_malformed += 1
        return []

    def _commit(self, block: Block) -> list[Action]:
        actions: list[Action] = [Committed(block, block.certificate.round)]
        self.height += 1
        self.round = 0
        self.pongs, self.decided = set(), True
        actions.append(SetTimer(Timer(TimerKind.NEW_ROUND, self.height, 0), self.interval_ms))
        return actions


def ping_pong_factory(
    n: int, *, quorum: int | None = None, timeout_ms: int = 1000, interval_ms: int = 100
) -> Callable[[int, NodeSpec], PingPong]:
    """Node i runs validator i (Twins: extra nodes run the validator whose key they
    hold); each node's blocks are salted with its name."""
    keys = [key(i) for i in range(n)]

    def factory(_index: int, spec: NodeSpec) -> PingPong:
        return PingPong(
            keys.index(spec.key),
            n,
            quorum=quorum,
            timeout_ms=timeout_ms,
            interval_ms=interval_ms,
            salt=spec.name,
        )

    return factory
