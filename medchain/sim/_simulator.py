"""The deterministic simulator: one event queue on a virtual clock drives every
node's engine through the sans-IO contract and carries out what it answers.

Nothing reads the wall clock or the global RNG: one `random.Random(seed)` makes the
salt every link's and every Byzantine node's stream derives from, and ties in time
are broken by the order events were scheduled. So one seed gives one run, and the
SHA-256 trace of every event delivered and action taken proves it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from medchain.consensus import (
    Broadcast,
    CheckpointCertified,
    Committed,
    Event,
    MessageReceived,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    TimerKind,
    TxsAvailable,
)
from medchain.sim._clock import EventQueue, derive_rng, ms_to_us, us_to_ms
from medchain.sim._faults import (
    BEGIN,
    Adversary,
    BlockCommitted,
    FaultKind,
    FaultSchedule,
    MessageSent,
    Observation,
    RoundEntered,
    Wakeup,
)
from medchain.sim._metrics import (
    EvidenceReport,
    HeightRecord,
    KindTraffic,
    NodeCommit,
    NodeInfo,
    SimResult,
    StopReason,
)
from medchain.sim._network import Drop, Network, NetworkConfig
from medchain.sim._node import Delayed, NodeFactory, NodeSpec, SimAction, SimNode, engine_stats
from medchain.types import Block, block_hash, encode

EvidenceHandler = Callable[["Simulator", EvidenceReport], None]
"""Told of each ReportEvidence as it happens, to turn it into a transaction."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    nodes: tuple[NodeSpec, ...]
    network: NetworkConfig = field(default_factory=NetworkConfig)
    seed: int = 0
    start_ms: int = 0
    """The clock's first reading (engines put it in block headers)."""
    max_events: int = 2_000_000
    """Bound on queue items processed per `run`, so every run ends."""
    label: str = ""
    """The engine's name in tables and plots."""
    keep_log: bool = False
    """Keep a readable line per traced record in `SimResult.log` (for diffing runs)."""
    cpu_us_per_message: int = 0
    """Processing time a node spends on each received message (decode, signature
    check, bookkeeping). Messages queue FIFO while a node is busy, so a validator's
    delay grows with the number of messages it must handle, as on real hardware."""


# -- queue items ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Deliver:
    node: int
    src: int
    data: bytes
    arrived: bool = False
    """Already through the network (held while paused): no partition check again."""
    slotted: bool = False
    """Its processing slot is reserved (it waited for the node to finish others)."""


@dataclass(frozen=True, slots=True)
class _Fire:
    node: int
    timer: Timer
    token: int


@dataclass(frozen=True, slots=True)
class _Perform:
    node: int
    action: SimAction
    epoch: int


@dataclass(frozen=True, slots=True)
class _Boot:
    node: int


@dataclass(frozen=True, slots=True)
class _Txs:
    node: int


@dataclass(frozen=True, slots=True)
class _Fault:
    kind: FaultKind
    node: int


@dataclass(frozen=True, slots=True)
class _Wake:
    tag: str


@dataclass(frozen=True, slots=True)
class _Call:
    fn: Callable[[Simulator], None]


_Item = _Deliver | _Fire | _Perform | _Boot | _Txs | _Fault | _Wake | _Call
_NodeItem = _Deliver | _Fire | _Perform | _Boot | _Txs

_UP, _PAUSED, _CRASHED = "up", "paused", "crashed"


@dataclass(slots=True)
class _NodeState:
    status: str = _UP
    epoch: int = 0
    """Bumped by a crash: delayed actions from before it are void."""
    timers: dict[Timer, int] = field(default_factory=dict)
    """Pending timer -> token of the one SetTimer that still counts."""
    held: list[_NodeItem] = field(default_factory=list)
    round: tuple[int, int] | None = None
    height: int = 0
    busy_until_us: int = 0
    """With a processing cost: when the node can take its next message."""


@dataclass(slots=True)
class _HeightLog:
    commits: list[NodeCommit] = field(default_factory=list)
    header_time_ms: int | None = None
    first_honest_ms: int | None = None
    max_round: int = 0
    messages_at_commit: int = 0
    bytes_at_commit: int = 0


class _Trace:
    """SHA-256 over length-prefixed records: (time, node, tag, fields...)."""

    __slots__ = ("_hash", "lines")

    def __init__(self, keep_lines: bool) -> None:
        self._hash = hashlib.sha256()
        self.lines: list[str] | None = [] if keep_lines else None

    def record(self, at_us: int, node: int, tag: str, *parts: bytes | int | str) -> None:
        h = self._hash
        tag_bytes = tag.encode()
        h.update(at_us.to_bytes(8, "big") + node.to_bytes(4, "big", signed=True))
        h.update(len(tag_bytes).to_bytes(1, "big") + tag_bytes)
        for part in parts:
            if isinstance(part, int):
                raw = part.to_bytes(8, "big", signed=True)
            elif isinstance(part, str):
                raw = part.encode()
            else:
                raw = part
            h.update(len(raw).to_bytes(4, "big") + raw)
        if self.lines is not None:
            shown = [p.hex()[:24] if isinstance(p, bytes) else str(p) for p in parts]
            self.lines.append(" ".join([str(at_us), str(node), tag, *shown]))

    def digest(self) -> bytes:
        return self._hash.copy().digest()


class Simulator:
    """Runs the nodes `factory` builds under `config`'s network, `faults` and an
    optional adversary; `run` may be called again to continue."""

    def __init__(
        self,
        config: SimConfig,
        factory: NodeFactory,
        faults: FaultSchedule | None = None,
        adversary: Adversary | None = None,
        *,
        on_evidence: EvidenceHandler | None = None,
    ) -> None:
        if not config.nodes:
            raise ValueError("a simulation needs at least one node")
        self._config = config
        self._rng = random.Random(config.seed)
        salt = self._rng.randbytes(16)
        self._network = Network(config.network, salt)
        self._queue: EventQueue[_Item] = EventQueue(ms_to_us(config.start_ms))
        self._adversary = adversary
        self._on_evidence = on_evidence
        self._trace = _Trace(config.keep_log)

        self._by_key: dict[bytes, list[int]] = {}
        for index, spec in enumerate(config.nodes):
            self._by_key.setdefault(spec.key, []).append(index)
        nodes = []
        for index, spec in enumerate(config.nodes):
            engine = factory(index, spec)
            if spec.behaviour is not None:
                engine = spec.behaviour(engine, derive_rng(salt, "node", index))
            honest = spec.behaviour is None and not spec.byzantine
            honest = honest and len(self._by_key[spec.key]) == 1
            nodes.append(SimNode(index, spec.name, spec.key, honest, engine))
        self._nodes = tuple(nodes)
        self._states = [_NodeState() for _ in nodes]

        self._token = 0
        self._events = 0
        self._began = False
        self._stop_reason = StopReason.IDLE
        self._heights: dict[int, _HeightLog] = {}
        self._honest_heights = 0
        self._traffic: dict[str, list[int]] = {}
        self._messages = 0
        self._bytes = 0
        self._delivered = 0
        self._drops: dict[str, int] = {}
        self._timeouts = 0
        self._evidence: list[EvidenceReport] = []

        for fault in faults.faults if faults is not None else ():
            self._fault_at(fault.kind, fault.node, fault.at_ms)
        for index in range(len(nodes)):
            self._queue.push(self._queue.now_us, _Boot(index))

    # -- public view -------------------------------------------------------------------

    @property
    def nodes(self) -> tuple[SimNode, ...]:
        return self._nodes

    @property
    def now_ms(self) -> int:
        return us_to_ms(self._queue.now_us)

    @property
    def now_us(self) -> int:
        return self._queue.now_us

    @property
    def rng(self) -> random.Random:
        """The run's own random stream, for the harness (load, choices)."""
        return self._rng

    def height(self, node: int) -> int:
        """The highest height `node` has committed (0 before any)."""
        return self._states[node].height

    def honest_heights(self) -> int:
        """How many heights at least one honest node has committed."""
        return self._honest_heights

    def status(self, node: int) -> str:
        """One of "up", "paused", "crashed"."""
        return self._states[node].status

    # -- scheduling, for the harness and the adversary ---------------------------------

    def _push(self, at_us: int, item: _Item) -> None:
        """Schedule at `at_us`; a time already past means now (after what is queued)."""
        self._queue.push(max(at_us, self._queue.now_us), item)

    def _fault_at(self, kind: FaultKind, node: int, at_ms: int) -> None:
        if not 0 <= node < len(self._nodes):
            raise ValueError(f"no node {node}: the simulation has {len(self._nodes)}")
        self._push(ms_to_us(at_ms), _Fault(kind, node))

    def crash(self, node: int, at_ms: int) -> None:
        self._fault_at(FaultKind.CRASH, node, at_ms)

    def restart(self, node: int, at_ms: int) -> None:
        self._fault_at(FaultKind.RESTART, node, at_ms)

    def pause(self, node: int, at_ms: int) -> None:
        self._fault_at(FaultKind.PAUSE, node, at_ms)

    def resume(self, node: int, at_ms: int) -> None:
        self._fault_at(FaultKind.RESUME, node, at_ms)

    def wake(self, at_ms: int, tag: str) -> None:
        """Have the adversary called with `Wakeup(tag)` at `at_ms`."""
        self._push(ms_to_us(at_ms), _Wake(tag))

    def at(self, at_ms: int, fn: Callable[[Simulator], None]) -> None:
        """Call `fn(sim)` at `at_ms` of virtual time (load, checks, tx submission)."""
        self._push(ms_to_us(at_ms), _Call(fn))

    def txs_available(self, node: int | None = None, at_ms: int | None = None) -> None:
        """Deliver `TxsAvailable` to one node, or to every node, at `at_ms` (now)."""
        at_us = self._queue.now_us if at_ms is None else ms_to_us(at_ms)
        for index in range(len(self._nodes)) if node is None else (node,):
            self._push(at_us, _Txs(index))

    # -- the loop ----------------------------------------------------------------------

    def run(
        self,
        until_ms: int,
        stop_when: Callable[[Simulator], bool] | None = None,
    ) -> SimResult:
        """Process events up to `until_ms` of virtual time, until `stop_when(sim)` holds
        after an event, or until `config.max_events` were processed in this call."""
        limit_us = ms_to_us(until_ms)
        if not self._began:
            self._began = True
            self._observe(Wakeup(self.now_ms, BEGIN))
        processed = 0
        queue = self._queue
        while True:
            if processed >= self._config.max_events:
                self._stop_reason = StopReason.MAX_EVENTS
                break
            head = queue.peek_time()
            if head is None or head > limit_us:
                queue.advance_to(limit_us)
                self._stop_reason = StopReason.IDLE if head is None else StopReason.UNTIL
                break
            _, item = queue.pop()
            processed += 1
            self._events += 1
            self._step(item)
            if stop_when is not None and stop_when(self):
                self._stop_reason = StopReason.STOP_WHEN
                break
        return self.result()

    def _step(self, item: _Item) -> None:
        if isinstance(item, _Deliver | _Fire | _Perform | _Boot | _Txs):
            self._node_item(item)
        elif isinstance(item, _Fault):
            self._fault(item.kind, item.node)
        elif isinstance(item, _Wake):
            self._observe(Wakeup(self.now_ms, item.tag))
        else:
            item.fn(self)

    def _node_item(self, item: _NodeItem) -> None:
        index = item.node
        state = self._states[index]
        now_us = self._queue.now_us
        if isinstance(item, _Deliver):
            if state.status == _CRASHED:
                self._drop(Drop.CRASHED, item.src, index)
                return
            if not item.arrived and self._network.config.cut(item.src, index, us_to_ms(now_us)):
                self._drop(Drop.PARTITIONED, item.src, index)
                return
            if state.status == _PAUSED:
                state.held.append(_Deliver(index, item.src, item.data, arrived=True))
                return
            cost = self._config.cpu_us_per_message
            if cost and not item.slotted:
                start = max(now_us, state.busy_until_us)
                state.busy_until_us = start + cost  # reserve the next slot, first come first served
                if start > now_us:
                    slot = _Deliver(index, item.src, item.data, arrived=True, slotted=True)
                    self._queue.push(start, slot)
                    return
            self._delivered += 1
            self._trace.record(now_us, index, "recv", item.src, item.data)
            self._handle(index, MessageReceived(us_to_ms(now_us), item.data))
            return
        if state.status == _CRASHED:
            return
        if state.status == _PAUSED:
            state.held.append(item)
            return
        if isinstance(item, _Fire):
            if state.timers.get(item.timer) != item.token:
                return
            del state.timers[item.timer]
            timer = item.timer
            self._trace.record(now_us, index, "timer", timer.kind, timer.height, timer.round)
            if (
                timer.kind is TimerKind.ROUND
                and self._nodes[index].honest
                and state.round == (timer.height, timer.round)
                and state.height < timer.height
            ):
                self._timeouts += 1
            self._handle(index, TimerFired(us_to_ms(now_us), timer))
        elif isinstance(item, _Perform):
            if item.epoch == state.epoch:
                self._trace.record(now_us, index, "delayed")
                self._perform(index, item.action)
        elif isinstance(item, _Boot):
            self._trace.record(now_us, index, "start")
            self._handle(index, Start(us_to_ms(now_us)))
        else:
            self._trace.record(now_us, index, "txs")
            self._handle(index, TxsAvailable(us_to_ms(now_us)))

    def _handle(self, index: int, event: Event) -> None:
        try:
            actions = self._nodes[index].engine.handle(event)
        except Exception as exc:
            exc.add_note(f"in the engine of node {index} at {self.now_ms} ms, handling {event!r}")
            raise
        for action in actions:
            self._perform(index, action)

    def _fault(self, kind: FaultKind, index: int) -> None:
        state = self._states[index]
        now_us = self._queue.now_us
        if kind is FaultKind.CRASH and state.status != _CRASHED:
            state.status = _CRASHED
            state.epoch += 1
            state.busy_until_us = 0
            state.timers.clear()
            for held in state.held:
                if isinstance(held, _Deliver):
                    self._drop(Drop.CRASHED, held.src, index)
            state.held.clear()
        elif kind is FaultKind.RESTART and state.status == _CRASHED:
            state.status = _UP
            self._trace.record(now_us, index, str(kind))
            self._trace.record(now_us, index, "start")
            self._handle(index, Start(us_to_ms(now_us)))
            return
        elif kind is FaultKind.PAUSE and state.status == _UP:
            state.status = _PAUSED
        elif kind is FaultKind.RESUME and state.status == _PAUSED:
            state.status = _UP
            for held in state.held:
                self._queue.push(now_us, held)
            state.held.clear()
        else:
            return
        self._trace.record(now_us, index, str(kind))

    # -- actions -----------------------------------------------------------------------

    def _perform(self, index: int, action: SimAction) -> None:
        now_us = self._queue.now_us
        trace = self._trace
        if isinstance(action, Broadcast):
            trace.record(now_us, index, "broadcast", action.kind, action.data)
            self._observe(MessageSent(self.now_ms, index, None, action.kind, action.data))
            for dst in range(len(self._nodes)):
                if dst != index:
                    self._transmit(index, dst, action.kind, action.data)
        elif isinstance(action, Send):
            trace.record(now_us, index, "send", action.to, action.kind, action.data)
            self._observe(MessageSent(self.now_ms, index, action.to, action.kind, action.data))
            targets = [dst for dst in self._by_key.get(action.to, ()) if dst != index]
            if not targets:
                self._drop(Drop.UNKNOWN, index, -1)
            for dst in targets:
                self._transmit(index, dst, action.kind, action.data)
        elif isinstance(action, SetTimer):
            timer = action.timer
            trace.record(now_us, index, "set", timer.kind, timer.height, timer.round)
            trace.record(now_us, index, "delay", action.delay_ms)
            self._token += 1
            self._states[index].timers[timer] = self._token
            self._push(now_us + ms_to_us(action.delay_ms), _Fire(index, timer, self._token))
            if timer.kind is TimerKind.ROUND:
                self._entered(index, timer.height, timer.round)
        elif isinstance(action, Committed):
            self._committed(index, action.block, action.round_changes)
        elif isinstance(action, ReportEvidence):
            trace.record(now_us, index, "evidence", encode(action.evidence))
            report = EvidenceReport(index, self.now_ms, action.evidence)
            self._evidence.append(report)
            if self._on_evidence is not None:
                self._on_evidence(self, report)
        elif isinstance(action, CheckpointCertified):
            pass  # the simulated network has no verification chain to anchor on
        elif isinstance(action, Delayed):
            trace.record(now_us, index, "delay-action", action.delay_ms)
            epoch = self._states[index].epoch
            self._push(now_us + ms_to_us(action.delay_ms), _Perform(index, action.action, epoch))
        else:
            raise TypeError(f"node {index} returned an unknown action {action!r}")

    def _transmit(self, src: int, dst: int, kind: str, data: bytes) -> None:
        """Count one copy on the link (lost ones too) and schedule its arrival."""
        size = len(data)
        self._messages += 1
        self._bytes += size
        counts = self._traffic.get(kind)
        if counts is None:
            counts = self._traffic[str(kind)] = [0, 0]
        counts[0] += 1
        counts[1] += size
        fate = self._network.transmit(src, dst, size, self._queue.now_us)
        if isinstance(fate, Drop):
            self._drop(fate, src, dst)
        else:
            self._queue.push(fate, _Deliver(dst, src, data))

    def _drop(self, reason: Drop, src: int, dst: int) -> None:
        self._drops[str(reason)] = self._drops.get(str(reason), 0) + 1
        self._trace.record(self._queue.now_us, src, "drop", reason, dst)

    def _entered(self, index: int, height: int, round_: int) -> None:
        state = self._states[index]
        if state.round is not None and (height, round_) <= state.round:
            return
        state.round = (height, round_)
        if self._nodes[index].honest:
            log = self._heights.setdefault(height, _HeightLog())
            log.max_round = max(log.max_round, round_)
        self._observe(RoundEntered(self.now_ms, index, height, round_))

    def _committed(self, index: int, block: Block, round_changes: int) -> None:
        now_ms = self.now_ms
        digest = block_hash(block.header)
        height = block.height
        self._trace.record(self._queue.now_us, index, "commit", height, digest, round_changes)
        state = self._states[index]
        state.height = max(state.height, height)
        log = self._heights.setdefault(height, _HeightLog())
        log.commits.append(NodeCommit(index, now_ms, digest, round_changes))
        honest = self._nodes[index].honest
        if honest:
            log.max_round = max(log.max_round, round_changes)
        if log.header_time_ms is None or (honest and log.first_honest_ms is None):
            log.header_time_ms = block.header.time_ms
        if honest and log.first_honest_ms is None:
            self._honest_heights += 1
            log.first_honest_ms = now_ms
            log.messages_at_commit = self._messages
            log.bytes_at_commit = self._bytes
        self._observe(BlockCommitted(now_ms, index, block, round_changes))

    def _observe(self, obs: Observation) -> None:
        if self._adversary is not None:
            self._adversary(obs, self)

    # -- results -----------------------------------------------------------------------

    def result(self) -> SimResult:
        """What the run measured so far."""
        records = []
        prev_messages = prev_bytes = 0
        for height in sorted(self._heights):
            log = self._heights[height]
            messages = bytes_ = 0
            if log.first_honest_ms is not None:
                messages = log.messages_at_commit - prev_messages
                bytes_ = log.bytes_at_commit - prev_bytes
                prev_messages, prev_bytes = log.messages_at_commit, log.bytes_at_commit
            records.append(
                HeightRecord(
                    height=height,
                    header_time_ms=log.header_time_ms,
                    first_commit_ms=log.first_honest_ms,
                    round_changes=log.max_round,
                    commits=tuple(log.commits),
                    messages=messages,
                    bytes=bytes_,
                )
            )
        return SimResult(
            label=self._config.label,
            seed=self._config.seed,
            nodes=tuple(NodeInfo(n.index, n.name, n.key, n.honest) for n in self._nodes),
            start_ms=self._config.start_ms,
            end_ms=self.now_ms,
            events=self._events,
            stop_reason=self._stop_reason,
            heights=tuple(records),
            traffic=tuple(
                KindTraffic(kind, c[0], c[1]) for kind, c in sorted(self._traffic.items())
            ),
            delivered=self._delivered,
            drops=dict(sorted(self._drops.items())),
            round_timeouts=self._timeouts,
            evidence=tuple(self._evidence),
            engine_stats=tuple(engine_stats(n.engine) for n in self._nodes),
            trace_hash=self._trace.digest(),
            log=tuple(self._trace.lines or ()),
        )
