"""A minimal world for engine tests: a fake ledger per node and an instant network
with a timer heap. The full simulator (medchain.sim) is tested on its own."""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from medchain.consensus import (
    BftEngine,
    Broadcast,
    CheckpointCertified,
    Committed,
    EngineConfig,
    EngineKind,
    Event,
    MessageReceived,
    Ordering,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    TimerKind,
    unwire,
    wire,
)
from medchain.crypto import AccountKeys, address_from_public_key, merkle_root
from medchain.types import ZERO_HASH, Block, Certificate, Header, Tx, block_hash

CHAIN = "medchain-test"


@dataclass
class FakeApp:
    """Blocks are empty; a block is valid if it extends the tip in height, hash and time."""

    keys: tuple[bytes, ...]
    candidates: tuple[bytes, ...] = ()
    blocks: list[Block] = field(default_factory=list)
    invalid_from: set[bytes] = field(default_factory=set)
    """Proposers whose blocks this app rejects (to test accusations)."""

    def __post_init__(self) -> None:
        header = Header(
            CHAIN, 0, ZERO_HASH, 0, b"\x00" * 20, merkle_root([]), merkle_root([]), b"\x00" * 32
        )
        self.blocks.append(Block(header, (), Certificate(0, 0, block_hash(header), ())))

    @property
    def chain_id(self) -> str:
        return CHAIN

    def last_block(self) -> Block:
        return self.blocks[-1]

    def validators(self) -> tuple[bytes, ...]:
        return self.keys

    def primary_candidates(self) -> tuple[bytes, ...]:
        return self.candidates or self.keys

    def committee(self) -> tuple[bytes, ...]:
        return self.candidates or self.keys

    def block_at(self, height: int) -> Block | None:
        return self.blocks[height] if height < len(self.blocks) else None

    def propose(self, height: int, time_ms: int, proposer: bytes, vrf_proof: bytes) -> Block:
        parent = self.last_block().header
        header = Header(
            CHAIN,
            height,
            block_hash(parent),
            time_ms,
            address_from_public_key(proposer),
            merkle_root([]),
            merkle_root([]),
            parent.state_root,
            vrf_proof,
        )
        return Block(header, (), Certificate(0, 0, b"", ()))

    def order(self, height: int) -> tuple[Tx, ...]:
        return ()

    def build(
        self, height: int, ordering: Ordering, proposer: bytes, vrf_proof: bytes
    ) -> Block | str:
        """The block an ordering stands for; refused like `validate` refuses blocks."""
        if ordering.parent != block_hash(self.last_block().header):
            return "does not extend the tip"
        block = self.propose(height, ordering.time_ms, proposer, vrf_proof)
        return self.validate(block) or block

    def validate(self, block: Block) -> str | None:
        parent = self.last_block().header
        header = block.header
        if header.height != parent.height + 1 or header.prev_hash != block_hash(parent):
            return "does not extend the tip"
        if header.time_ms <= parent.time_ms:
            return "time does not advance"
        if any(address_from_public_key(k) == header.proposer for k in self.invalid_from):
            return "proposer's blocks are bad"
        return None

    def commit(self, block: Block) -> None:
        assert self.validate(block) is None, "committing an invalid block"
        self.blocks.append(block)


Rewrite = Callable[[int, object], list[object]]


class Net:
    """Instant delivery in FIFO order, timers on a heap; node i can be crashed."""

    def __init__(self, n: int, kind: EngineKind = EngineKind.PBFT, **config: int) -> None:
        self.keys = [AccountKeys.generate() for _ in range(n)]
        publics = tuple(k.public_key for k in self.keys)
        self.apps = [FakeApp(publics) for _ in range(n)]
        cfg = EngineConfig(CHAIN, kind, **config)
        self.engines = [BftEngine(cfg, k, a) for k, a in zip(self.keys, self.apps, strict=True)]
        self.now = 0
        self.queue: list[tuple[int, int, int, object]] = []
        self.seq = itertools.count()
        self.timers: dict[tuple[int, Timer], int] = {}
        self.down: set[int] = set()
        self.evidence: list[tuple[int, object]] = []
        self.rounds_by_node: dict[int, list[int]] = {}
        self.certified: dict[int, list[CheckpointCertified]] = {}
        self.rewrite: dict[int, Rewrite] = {}
        self.delivered = 0

    def index(self, public_key: bytes) -> int:
        return next(i for i, k in enumerate(self.keys) if k.public_key == public_key)

    def start(self) -> None:
        for i in range(len(self.engines)):
            self._push(0, i, Start(0))

    def _push(self, at: int, node: int, event: object) -> None:
        heapq.heappush(self.queue, (at, next(self.seq), node, event))

    def _act(self, node: int, actions: list[object]) -> None:
        if node in self.rewrite:
            actions = [out for a in actions for out in self.rewrite[node](node, a)]
        for action in actions:
            if isinstance(action, Broadcast):
                for j in range(len(self.engines)):
                    if j != node:
                        self._push(self.now + 1, j, MessageReceived(self.now + 1, action.data))
            elif isinstance(action, Send):
                self._push(
                    self.now + 1, self.index(action.to), MessageReceived(self.now + 1, action.data)
                )
            elif isinstance(action, SetTimer):
                due = self.now + action.delay_ms
                self.timers[(node, action.timer)] = due
                self._push(due, node, TimerFired(due, action.timer))
            elif isinstance(action, ReportEvidence):
                self.evidence.append((node, action.evidence))
            elif isinstance(action, Committed):
                self.rounds_by_node.setdefault(node, []).append(action.round_changes)
            elif isinstance(action, CheckpointCertified):
                self.certified.setdefault(node, []).append(action)

    def run(self, until_ms: int, max_events: int = 200_000) -> None:
        while self.queue and max_events:
            at, _, node, event = self.queue[0]
            if at > until_ms:
                break
            heapq.heappop(self.queue)
            max_events -= 1
            self.now = at
            if node in self.down:
                continue
            if isinstance(event, TimerFired) and self.timers.get((node, event.timer)) != at:
                continue  # replaced by a later SetTimer
            event = dataclasses.replace(event, now_ms=at)  # type: ignore[type-var]
            self.delivered += 1
            self._act(node, self.engines[node].handle(event))  # type: ignore[arg-type]

    @property
    def committed_rounds(self) -> list[int]:
        """Rounds at which the first live node decided each height."""
        first = min(i for i in range(len(self.engines)) if i not in self.down)
        return self.rounds_by_node.get(first, [])

    def heights(self) -> list[int]:
        return [a.last_block().header.height for a in self.apps]

    def assert_agreement(self, nodes: list[int] | None = None) -> None:
        chosen = nodes if nodes is not None else range(len(self.apps))
        tips = min(self.apps[i].last_block().header.height for i in chosen)
        for height in range(1, tips + 1):
            hashes = {block_hash(self.apps[i].blocks[height].header) for i in chosen}
            assert len(hashes) == 1, f"disagreement at height {height}"


def fixed_keys(n: int) -> list[AccountKeys]:
    """Validator keys from fixed seeds, so a test's draws and orders never vary."""
    return [AccountKeys(bytes([i + 1]) * 32, bytes([i + 101]) * 32) for i in range(n)]


class Solo:
    """One engine, validator `me` of `n`, driven by hand: the test plays the other
    validators by signing their messages itself, and fires the engine's timers."""

    def __init__(self, kind: EngineKind, n: int = 4, me: int = 1, **config: int) -> None:
        self.kind = kind
        self.keys = fixed_keys(n)
        self.me = me
        self.app = FakeApp(tuple(k.public_key for k in self.keys))
        self.engine = BftEngine(EngineConfig(CHAIN, kind, **config), self.keys[me], self.app)
        self.now = 0
        self.timers: dict[tuple[TimerKind, int], int] = {}
        self.sent: list[object] = []
        """Every message the engine broadcast, decoded, in order."""
        self.evidence: list[object] = []

    def feed(self, event: Event) -> list[object]:
        """Hand the engine one event; record what it sends; return those messages."""
        out: list[object] = []
        for action in self.engine.handle(event):
            if isinstance(action, Broadcast):
                out.append(unwire(action.data))
            elif isinstance(action, SetTimer):
                self.timers[(action.timer.kind, action.timer.round)] = self.now + action.delay_ms
            elif isinstance(action, ReportEvidence):
                self.evidence.append(action.evidence)
        self.sent.extend(out)
        return out

    def start(self) -> list[object]:
        """Start the height and let the block interval pass (the engine may propose)."""
        out = self.feed(Start(self.now))
        return out + self.fire(TimerKind.NEW_ROUND, 0)

    def fire(self, kind: TimerKind, round_: int) -> list[object]:
        """Fire the engine's latest timer of this kind and round, at its due time."""
        due = self.timers[(kind, round_)]
        self.now = max(self.now, due)
        return self.feed(TimerFired(self.now, Timer(kind, self.engine.height, round_)))

    def receive(self, message: object) -> list[object]:
        return self.feed(MessageReceived(self.now, wire(message)))  # type: ignore[arg-type]
