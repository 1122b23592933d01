"""The sans-IO contract of every consensus engine.

An engine is a deterministic state machine: `handle(event) -> list[Action]`.
It owns no socket, clock or thread; the driver (the simulator, or the node's
asyncio loop) feeds it events stamped with the driver's time and carries out the
actions it returns. The engine reaches the ledger only through `ConsensusApp`,
the shape of CometBFT's ABCI, so it never imports the contracts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from medchain.consensus._messages import Checkpoint, Message, Ordering
from medchain.types import Block, EquivocationEvidence, InvalidProposalEvidence, Tx

# -- events (driver -> engine) ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Start:
    """The engine may begin (or resume after a restart) consensus at the app's next height."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class MessageReceived:
    now_ms: int
    data: bytes
    """Raw bytes from a peer; the engine decodes and authenticates them itself."""
    sender: bytes | None = None
    """The authenticated peer the bytes came from, when the driver knows it (a block
    request is answered only to the peer that sent it, never to one it names)."""
    decoded: Message | None = None
    """The message `data` stands for, when the driver had to decode it itself (the
    node completes an AFBFT ordering relayed as transaction ids from its mempool);
    the engine then authenticates it instead of decoding `data` again."""


class TimerKind(enum.StrEnum):
    ROUND = "round"
    """The round (view) did not commit in time: ask for a round change."""
    PROPOSAL_WINDOW = "proposal_window"
    """AFBFT: stop waiting for candidates' proposals and prepare the lowest draw."""
    NEW_ROUND = "new_round"
    """Wait between a commit and the next height's proposal (the block interval)."""


@dataclass(frozen=True, slots=True)
class Timer:
    kind: TimerKind
    height: int
    round: int


@dataclass(frozen=True, slots=True)
class TimerFired:
    now_ms: int
    timer: Timer


@dataclass(frozen=True, slots=True)
class TxsAvailable:
    """The mempool holds transactions; a primary waiting for work may propose now."""

    now_ms: int


@dataclass(frozen=True, slots=True)
class ProposalComing:
    """The driver holds a signed proposal of `proposer` for (height, round) whose
    transactions it is still checking (or fetching) before handing it over. AFBFT's
    proposal window waits for it as for one arrived late, up to half the round's
    timeout, instead of ranking the draws without it: under load those checks take
    longer than the window, and validators that rank different subsets of the
    candidates prepare different blocks and lose the round."""

    now_ms: int
    height: int
    round: int
    proposer: bytes


Event = Start | MessageReceived | TimerFired | TxsAvailable | ProposalComing

# -- actions (engine -> driver) -----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send to every other validator (and observers)."""

    data: bytes
    kind: str
    """Message kind: the driver's metrics, and with `step` its signing guard."""
    step: tuple[int, int] | None = None
    """(height, round) of a proposal, vote or round change: a validator must never
    sign two different messages of one kind there (the node's WAL holds it to that)."""
    message: Message | None = None
    """The signed message `data` encodes, for a driver that relays some messages in
    a form of its own (the node sends an AFBFT ordering as transaction ids)."""


@dataclass(frozen=True, slots=True)
class Send:
    to: bytes
    """Ed25519 public key of the recipient validator."""
    data: bytes
    kind: str


@dataclass(frozen=True, slots=True)
class SetTimer:
    timer: Timer
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Committed:
    """A block was decided and handed to the app (`ConsensusApp.commit`)."""

    block: Block
    round_changes: int
    """How many round (view) changes this height needed."""


@dataclass(frozen=True, slots=True)
class ReportEvidence:
    """Misbehaviour the driver should put on chain (a signed evidence transaction)."""

    evidence: EquivocationEvidence | InvalidProposalEvidence


@dataclass(frozen=True, slots=True)
class CheckpointCertified:
    """A quorum of validators signed the same checkpoint: the driver may anchor it on
    the verification chain. Emitted once per checkpoint height."""

    checkpoint: Checkpoint
    """The agreed view (the signer and signature fields are those of one signer)."""
    signatures: tuple[Checkpoint, ...]
    """The agreeing signed checkpoints, one per validator, ordered by validator key."""


Action = Broadcast | Send | SetTimer | Committed | ReportEvidence | CheckpointCertified

# -- the application, as consensus sees it -------------------------------------------


class ConsensusApp(Protocol):
    """What an engine may ask of the ledger. Every answer is a deterministic function
    of the committed chain, so all honest validators get the same one."""

    @property
    def chain_id(self) -> str: ...

    def last_block(self) -> Block:
        """The latest committed block (genesis block at height 0)."""
        ...

    def validators(self) -> tuple[bytes, ...]:
        """Voting validators (Ed25519 keys) for the next height, in a canonical order."""
        ...

    def primary_candidates(self) -> tuple[bytes, ...]:
        """AFBFT's candidate queue for the next height: elected by stake-weighted votes,
        best first, banned ones excluded."""
        ...

    def committee(self) -> tuple[bytes, ...]:
        """DPoS: the current epoch's producers, ordered by votes."""
        ...

    def block_at(self, height: int) -> Block | None:
        """A committed block with its certificate (for peers that fell behind)."""
        ...

    def propose(self, height: int, time_ms: int, proposer: bytes, vrf_proof: bytes) -> Block:
        """Build and execute the next block from pending transactions; its certificate
        is empty. `proposer` is the proposing validator's Ed25519 key; `vrf_proof` goes
        into the header (AFBFT; empty otherwise)."""
        ...

    def order(self, height: int) -> tuple[Tx, ...]:
        """AFBFT: the pending transactions the next block should hold, in order, not
        executed (at most `max_block_txs`): a candidate's ordering."""
        ...

    def build(
        self, height: int, ordering: Ordering, proposer: bytes, vrf_proof: bytes
    ) -> Block | str:
        """AFBFT: the block `ordering` by `proposer` (Ed25519 key) stands for, built and
        executed as a dry run on the tip, its certificate empty; or why it cannot be
        the next block (not on the tip, time not after the parent's, too many
        transactions). A deterministic function of the committed chain and its
        arguments: transactions invalid where they stand are left out, as the
        proposer's own build would, so every honest validator builds the same block."""
        ...

    def validate(self, block: Block) -> str | None:
        """None if `block` is a valid next block, else why it is not."""
        ...

    def commit(self, block: Block) -> None:
        """Apply and persist a decided block; `block.certificate` proves the decision."""
        ...


class MessageStats(Protocol):
    """Counters every engine keeps; the simulator and the node's metrics read them."""

    received: int
    dropped_malformed: int
    dropped_bad_signature: int
    dropped_unknown_sender: int
    dropped_duplicate: int
    dropped_stale: int
