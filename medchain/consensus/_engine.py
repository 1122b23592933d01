"""The BFT engine: PBFT's three phases, round (view) changes with prepared
certificates, checkpoints, catch-up, and evidence — shared by PBFT, AFBFT and
DPoS+PBFT, which differ only in their `HeightPlan` (who votes, who proposes).

One object owns the round state and every input goes through `handle`. Safety
rests on three rules: a validator votes at most once per (height, round, phase)
and only in its current round; a round change carries the highest certificate it
prepared; a proposal above round 0 must re-propose the highest prepared block
among the quorum of round changes that justify it.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from medchain.consensus._api import (
    Action,
    Broadcast,
    CheckpointCertified,
    Committed,
    ConsensusApp,
    Event,
    MessageReceived,
    ProposalComing,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    TimerKind,
    TxsAvailable,
)
from medchain.consensus._messages import (
    AccusationMessage,
    Checkpoint,
    Kind,
    Message,
    Ordering,
    PreparedCertificate,
    Proposal,
    RoundChange,
    SyncRequest,
    SyncResponse,
    Vote,
    authentic,
    block_id,
    body_matches_header,
    certificate_from,
    kind_of,
    proposal_digest,
    sign,
    signed_proposal,
    signer_of,
    unwire,
    verify,
    verify_certificate,
    wire,
)
from medchain.consensus._schedule import EngineKind, HeightPlan, plan_height
from medchain.crypto import AccountKeys, verify_signature, vrf_prove
from medchain.types import (
    Accusation,
    Block,
    DecodeError,
    EquivocationEvidence,
    InvalidProposalEvidence,
    MedchainError,
    SignedProposal,
    proposal_signing_bytes,
)


@dataclass(frozen=True, slots=True)
class EngineConfig:
    chain_id: str
    kind: EngineKind = EngineKind.PBFT
    block_interval_ms: int = 1_000
    """Pause between a commit and the next height's proposal."""
    round_timeout_ms: int = 2_000
    """Round 0's timeout; round r waits `round_timeout_ms * 2**r`, capped."""
    max_round_timeout_ms: int = 32_000
    proposal_window_ms: int = 200
    """AFBFT: how long to wait for candidates' proposals when one is missing (the
    window closes as soon as every seated candidate's proposal is in)."""
    checkpoint_interval: int = 10
    future_heights: int = 8
    """Messages up to this many heights ahead are kept for later."""
    max_buffered: int = 20_000
    sync_batch: int = 32
    sync_interval_ms: int = 1_000
    """A requester catching up asks for ever later blocks and is answered at once; a
    request for blocks it was already sent (a restart, or a replay) is answered at
    most this often."""


@dataclass
class EngineStats:
    received: int = 0
    dropped_malformed: int = 0
    dropped_bad_signature: int = 0
    dropped_unknown_sender: int = 0
    dropped_duplicate: int = 0
    dropped_stale: int = 0
    round_changes: int = 0
    equivocations: int = 0
    invalid_proposals: int = 0
    commits: int = 0
    synced_blocks: int = 0
    checkpoint_mismatches: int = 0
    stable_checkpoint: int = 0


@dataclass
class _Round:
    proposal: Proposal | None = None
    """The proposal this node prepared (PBFT/DPoS: the primary's)."""
    candidates: dict[bytes, Proposal] = field(default_factory=dict)
    """Valid proposals received this round, by proposer (AFBFT has several)."""
    window_closed: bool = False
    """AFBFT: the proposal window of this round is over; prepare the lowest draw."""
    window_deadline: int | None = None
    window_cap: int | None = None
    """AFBFT: the latest the window waits for proposals the driver said are coming."""
    coming: set[bytes] = field(default_factory=set)
    """AFBFT: candidates whose proposal the driver holds, still being checked."""
    extended: bool = False
    """AFBFT: the window outlived its deadline, waiting for `coming` proposals."""
    prepares: dict[bytes, dict[bytes, Vote]] = field(default_factory=dict)
    commits: dict[bytes, dict[bytes, Vote]] = field(default_factory=dict)
    voted_prepare: bool = False
    voted_commit: bool = False
    proposed: bool = False


@dataclass
class _Height:
    plan: HeightPlan
    round: int = 0
    rounds: dict[int, _Round] = field(default_factory=dict)
    round_changes: dict[int, dict[bytes, RoundChange]] = field(default_factory=dict)
    seen_proposals: dict[tuple[int, bytes], Proposal] = field(default_factory=dict)
    accusations: dict[tuple[int, bytes], dict[bytes, AccusationMessage]] = field(
        default_factory=dict
    )
    reported: set[tuple[int, bytes]] = field(default_factory=set)
    verdicts: dict[bytes, bool] = field(default_factory=dict)
    """Proposal digest (block id, or AFBFT ordering id) -> whether this node found it
    valid (each block validated, each ordering built, once)."""
    built: dict[bytes, Block] = field(default_factory=dict)
    """AFBFT: ordering id -> the block this node built from it."""
    excluded: set[bytes] = field(default_factory=set)
    """Proposers caught equivocating at this height: never chosen again here, so a
    cheating lowest draw cannot stall the height round after round."""
    invalid: dict[tuple[int, bytes], Proposal] = field(default_factory=dict)
    """Proposals this node found invalid, by (round, proposal digest), for accusations."""
    prepared: PreparedCertificate | None = None
    started: bool = False
    """The block interval has passed: the primary may propose."""

    def at(self, round_: int) -> _Round:
        return self.rounds.setdefault(round_, _Round())

    def known_block(self, digest: bytes) -> Block | None:
        for state in self.rounds.values():
            for proposal in state.candidates.values():
                block = self.block_of(proposal)
                if block is not None and block_id(block) == digest:
                    return block
        if self.prepared is not None and block_id(self.prepared.block) == digest:
            return self.prepared.block
        return None

    def block_of(self, proposal: Proposal) -> Block | None:
        """The block a proposal stands for: its own, or the one this node built from
        its ordering (None while not built, or if it cannot be built)."""
        if isinstance(proposal.block, Block):
            return proposal.block
        return self.built.get(proposal_digest(proposal))


def engine_kind(name: str) -> EngineKind:
    """The engine a genesis names; a clear error for anything else."""
    try:
        return EngineKind(name)
    except ValueError:
        known = ", ".join(k.value for k in EngineKind)
        raise MedchainError(
            f"unknown consensus engine {name!r} in the genesis; use {known}"
        ) from None


class BftEngine:
    def __init__(self, config: EngineConfig, keys: AccountKeys, app: ConsensusApp) -> None:
        self.config = config
        self.keys = keys
        self.me = keys.public_key
        self.app = app
        self.stats = EngineStats()
        self.now = 0
        self._actions: list[Action] = []
        self._state: _Height | None = None
        self._seen: set[bytes] = set()
        self._future: dict[int, list[Message]] = {}
        self._buffered = 0
        self._checkpoints: dict[int, dict[bytes, Checkpoint]] = {}
        self._last_sync_request = -(10**12)
        self._sync_answered: dict[bytes, tuple[int, int]] = {}
        """Requester -> (when, from which height) it was last sent blocks."""
        self._validators: frozenset[bytes] = frozenset()
        self._height_started_at = 0

    # -- the one entry point --------------------------------------------------------

    def handle(self, event: Event) -> list[Action]:
        self.now = event.now_ms
        self._actions = []
        if isinstance(event, Start):
            self._resume()
        elif isinstance(event, MessageReceived):
            self._receive(event.data, event.sender, event.decoded)
        elif isinstance(event, TimerFired):
            self._on_timer(event.timer)
        elif isinstance(event, TxsAvailable):
            pass  # proposals are paced by the block interval; pending txs ride the next block
        elif isinstance(event, ProposalComing):
            self._on_coming(event)
        actions, self._actions = self._actions, []
        return actions

    @property
    def height(self) -> int:
        return self._state.plan.height if self._state else self.app.last_block().height + 1

    @property
    def round(self) -> int:
        return self._state.round if self._state else 0

    @property
    def primary(self) -> bytes | None:
        """Who proposes the current round (AFBFT: the lowest draw seen so far)."""
        return self._state.plan.primary(self._state.round) if self._state else None

    @property
    def highest_seen_height(self) -> int:
        """The highest height peers' held messages speak of: far above `height` means
        this node is behind and catching up."""
        return max(self._future, default=self.height)

    # -- heights and rounds ---------------------------------------------------------

    def _resume(self) -> None:
        """Start, or restart after a crash: keep the round state of a height still in
        progress (what a validator signed stays signed), re-arm its timers."""
        state = self._state
        if state is None or state.plan.height != self.app.last_block().header.height + 1:
            self._start_height()
            return
        self._request_sync(None)  # we may have missed decisions while down
        if not state.started:
            self._set_timer(TimerKind.NEW_ROUND, 0, self._pause())
        self._set_timer(TimerKind.ROUND, state.round, self._timeout(state.round))

    def _start_height(self) -> None:
        plan = plan_height(self.config.kind, self.app)
        self._state = _Height(plan)
        self._validators = frozenset(self.app.validators())
        self._height_started_at = self.now
        self._seen.clear()
        pause = self._pause()
        self._set_timer(TimerKind.NEW_ROUND, 0, pause)
        self._set_timer(TimerKind.ROUND, 0, pause + self._timeout(0))
        for message in self._future.pop(plan.height, []):
            self._buffered -= 1
            self._dispatch(message)

    def _pause(self) -> int:
        """Until the next height's proposals: paced by the parent's timestamp, not by when
        we heard of it, so a node that just caught up joins the chain's rhythm."""
        parent_time = self.app.last_block().header.time_ms
        return max(0, parent_time + self.config.block_interval_ms - self.now)

    def _timeout(self, round_: int) -> int:
        return min(
            self.config.round_timeout_ms << min(round_, 20), self.config.max_round_timeout_ms
        )

    def _set_timer(self, kind: TimerKind, round_: int, delay: int) -> None:
        self._actions.append(SetTimer(Timer(kind, self.height, round_), delay))

    def _on_timer(self, timer: Timer) -> None:
        state = self._state
        if state is None or timer.height != state.plan.height:
            return
        if timer.kind is TimerKind.NEW_ROUND:
            state.started = True
            self._open_window(state, 0)
            self._maybe_propose(state)
        elif timer.kind is TimerKind.PROPOSAL_WINDOW:
            current = state.at(timer.round)
            if current.window_deadline is None or self.now < current.window_deadline:
                return  # superseded: the window was reset, or moved later (a stale timer)
            if not current.candidates:
                current.window_deadline = None  # nothing yet: the first proposal reopens it
                return
            if self._awaited(state, current):
                self._wait_longer(timer.round, current)
                return
            current.window_closed = True
            self._choose(state, timer.round)
        elif timer.kind is TimerKind.ROUND and timer.round == state.round:
            self._enter_round(state, state.round + 1)

    def _on_coming(self, event: ProposalComing) -> None:
        state = self._state
        if (
            state is None
            or event.height != state.plan.height
            or event.round < state.round
            or state.plan.kind is not EngineKind.AFBFT
            or event.proposer not in state.plan.order
        ):
            return
        current = state.at(event.round)
        if not current.window_closed:
            current.coming.add(event.proposer)

    def _awaited(self, state: _Height, current: _Round) -> bool:
        """Is the window to wait on for a proposal the driver holds (within its cap)?"""
        late = current.coming - current.candidates.keys() - state.excluded
        return bool(late) and current.window_cap is not None and self.now < current.window_cap

    def _wait_longer(self, round_: int, current: _Round) -> None:
        assert current.window_cap is not None
        current.extended = True
        deadline = min(self.now + self.config.proposal_window_ms, current.window_cap)
        current.window_deadline = deadline
        self._set_timer(TimerKind.PROPOSAL_WINDOW, round_, deadline - self.now)

    def _enter_round(self, state: _Height, round_: int) -> None:
        """Give up on the current round: ask everyone to move to `round_`."""
        if round_ <= state.round:
            return
        left = state.at(state.round).proposal
        state.round = round_
        self.stats.round_changes += 1
        self._set_timer(TimerKind.ROUND, round_, self._timeout(round_))
        self._open_window(state, round_)
        prepared = (state.prepared,) if state.prepared is not None else ()
        if self._is_voter(state):
            shown = (signed_proposal(left),) if left is not None else ()
            self._emit(RoundChange(state.plan.height, round_, prepared, self.me, b"", shown))
        self._maybe_propose(state)

    def _is_voter(self, state: _Height) -> bool:
        return self.me in state.plan.voters

    # -- proposing ------------------------------------------------------------------

    def _open_window(self, state: _Height, round_: int) -> None:
        """AFBFT collects candidates' proposals for a window, from when the round starts
        here or the first proposal arrives, whichever is sooner (a node that joins late,
        after a restart, votes as soon as the others); the other engines need none."""
        current = state.at(round_)
        if state.plan.kind is not EngineKind.AFBFT:
            current.window_closed = True
            return
        # doubles each round, so a window set shorter than the network's latency heals
        # itself instead of leaving every validator with only its own block
        deadline = self.now + (self.config.proposal_window_ms << min(round_, 6))
        if current.window_closed or (
            current.window_deadline is not None and current.window_deadline <= deadline
        ):
            return
        current.window_deadline = deadline
        if current.window_cap is None:
            current.window_cap = self.now + self._timeout(round_) // 2
        self._set_timer(TimerKind.PROPOSAL_WINDOW, round_, deadline - self.now)

    def _own_proof(self, state: _Height) -> bytes:
        if not state.plan.own_proof:
            state.plan.own_proof = vrf_prove(self.keys.signing_seed, state.plan.alpha)
        return state.plan.own_proof

    def _maybe_propose(self, state: _Height) -> None:
        if state is not self._state:
            return
        round_ = state.round
        current = state.at(round_)
        if current.proposed or not state.started:
            return
        if state.plan.kind is EngineKind.AFBFT:
            if self.me not in state.plan.order:
                return  # every candidate proposes with its draw; the lowest wins
        elif state.plan.primary(round_) != self.me:
            return
        justification: tuple[RoundChange, ...] = ()
        block: Block | None = None
        if round_ > 0:
            changes = state.round_changes.get(round_, {})
            if len(changes) < state.plan.quorum:
                return
            justification = tuple(changes[k] for k in sorted(changes))
            block = _highest_prepared_block(justification)
        proof = self._own_proof(state) if state.plan.kind is EngineKind.AFBFT else b""
        content: Block | Ordering
        if block is not None:
            content = block  # the highest prepared block, re-proposed as it is
        elif state.plan.kind is EngineKind.AFBFT:
            content = self._ordering(state)
        else:
            content = self.app.propose(state.plan.height, self._block_time(), self.me, proof)
        current.proposed = True
        self._emit(Proposal(state.plan.height, round_, content, proof, justification, self.me))

    def _ordering(self, state: _Height) -> Ordering:
        """AFBFT's fresh proposal: the transactions in order, not executed. K
        candidates propose each height and one wins; only the winner's ordering is
        ever executed, by every validator alike (`_build`)."""
        parent = block_id(self.app.last_block())
        return Ordering(parent, self._block_time(), self.app.order(state.plan.height))

    def _block_time(self) -> int:
        return max(self.now, self.app.last_block().header.time_ms + 1)

    # -- receiving ------------------------------------------------------------------

    def _receive(
        self, data: bytes, sender: bytes | None = None, decoded: Message | None = None
    ) -> None:
        self.stats.received += 1
        digest = hashlib.sha256(data).digest()
        if digest in self._seen:
            self.stats.dropped_duplicate += 1
            return
        try:
            message = decoded if decoded is not None else unwire(data)
        except (DecodeError, KeyError, ValueError):
            self.stats.dropped_malformed += 1
            return
        # anyone the transport let in may ask for blocks (observers catch up too);
        # everything else must come from a validator
        voters = self._validators or self.app.validators()
        if not isinstance(message, SyncRequest) and signer_of(message) not in voters:
            self.stats.dropped_unknown_sender += 1
            return
        chain_id = self.config.chain_id
        if not (verify(chain_id, message) if decoded is not None else authentic(chain_id, data)):
            self.stats.dropped_bad_signature += 1
            return
        if isinstance(message, SyncRequest):
            if self._answerable(message, sender):  # paced instead of deduplicated
                self._dispatch(message)
            return
        self._seen.add(digest)
        self._dispatch(message)

    def _answerable(self, request: SyncRequest, sender: bytes | None) -> bool:
        """A block request is answered only to the peer that sent it (a recorded request
        replayed by another peer must not make us send blocks to a third), and a
        request that does not ask for later blocks than the requester's previous one
        at most once per `sync_interval_ms`, so replays cannot amplify."""
        if sender is not None and sender != request.validator:
            self.stats.dropped_unknown_sender += 1
            return False
        answered = self._sync_answered.get(request.validator)
        if answered is not None:
            at, from_height = answered
            progress = request.from_height > from_height
            if not progress and self.now - at < self.config.sync_interval_ms:
                self.stats.dropped_duplicate += 1
                return False
        self._sync_answered[request.validator] = (self.now, request.from_height)
        return True

    def _dispatch(self, message: Message) -> None:
        if isinstance(message, SyncRequest):
            self._on_sync_request(message)
            return
        if isinstance(message, SyncResponse):
            self._on_sync_response(message)
            return
        state = self._state
        if state is None:
            return
        if isinstance(message, Checkpoint):
            self._on_checkpoint(message)
            return
        height = message.height
        if height < state.plan.height:
            self.stats.dropped_stale += 1
            return
        if height > state.plan.height:
            self._hold(message)
            return
        if isinstance(message, Proposal):
            self._on_proposal(state, message)
        elif isinstance(message, Vote):
            self._on_vote(state, message)
        elif isinstance(message, RoundChange):
            self._on_round_change(state, message)
        elif isinstance(message, AccusationMessage):
            self._on_accusation(state, message)

    def _hold(self, message: Message) -> None:
        """A message from a height we have not reached: keep it, and ask for blocks."""
        assert not isinstance(message, SyncRequest | SyncResponse)
        if message.height > self.height + self.config.future_heights:
            self.stats.dropped_stale += 1
        elif self._buffered < self.config.max_buffered:
            self._future.setdefault(message.height, []).append(message)
            self._buffered += 1
        stuck = self.now - self._height_started_at >= self.config.round_timeout_ms
        # a proposal for a later height means its sender decided ours: we missed it
        behind = isinstance(message, Proposal) or message.height > self.height + 1 or stuck
        if behind:
            self._request_sync(signer_of(message))

    def _request_sync(self, peer: bytes | None) -> None:
        """Ask `peer` (or everyone) for the blocks we lack; at most once a round timeout."""
        if self.now - self._last_sync_request < self.config.round_timeout_ms:
            return
        self._last_sync_request = self.now
        request = wire(sign(self.config.chain_id, SyncRequest(self.height, self.me), self.keys))
        if peer is None:
            self._actions.append(Broadcast(request, Kind.SYNC_REQUEST))
        else:
            self._actions.append(Send(peer, request, Kind.SYNC_REQUEST))

    # -- the three phases -----------------------------------------------------------

    def _on_proposal(self, state: _Height, proposal: Proposal) -> None:
        plan = state.plan
        if isinstance(proposal.block, Ordering):
            if plan.kind is not EngineKind.AFBFT:
                self.stats.dropped_malformed += 1  # only AFBFT's candidates send orderings
                return
        elif not body_matches_header(proposal.block):
            self.stats.dropped_malformed += 1  # altered in transit: not the signed block
            return
        digest = proposal_digest(proposal)
        key = (proposal.round, proposal.proposer)
        earlier = state.seen_proposals.get(key)
        if earlier is not None:
            if proposal_digest(earlier) != digest:
                self._report_equivocation(state, earlier, proposal)
            else:
                self.stats.dropped_duplicate += 1
            return
        state.seen_proposals[key] = proposal
        if proposal.proposer == self.me:
            # our own, replayed from the WAL after a restart: that round's proposal is
            # made; proposing another block would be equivocating against ourselves
            state.at(proposal.round).proposed = True
        if proposal.round < state.round:
            self.stats.dropped_stale += 1
            return
        if plan.kind is EngineKind.AFBFT and not plan.learn_vrf(
            proposal.proposer, proposal.vrf_proof
        ):
            self.stats.dropped_bad_signature += 1
            return
        if plan.kind is not EngineKind.AFBFT and plan.primary(proposal.round) != proposal.proposer:
            self.stats.dropped_unknown_sender += 1
            return
        if proposal.round > 0 and not self._justified(plan, proposal):
            self.stats.dropped_malformed += 1
            return
        if proposal.round > state.round:
            state.round = proposal.round  # a justified new view moves us forward
            self._set_timer(TimerKind.ROUND, proposal.round, self._timeout(proposal.round))
            self._open_window(state, proposal.round)
        current = state.at(proposal.round)
        current.candidates[proposal.proposer] = proposal
        self._open_window(state, proposal.round)
        if plan.kind is EngineKind.AFBFT and (
            self._every_seat_heard(state, current) or self._waited_for(state, current)
        ):
            current.window_closed = True  # no later proposal can draw lower: rank now
        self._choose(state, proposal.round)
        self._recheck_quorums(state, proposal.round)

    def _recheck_quorums(self, state: _Height, round_: int) -> None:
        """Votes may have reached a quorum before their block was known here: with a
        new proposal in, see whether it is theirs."""
        current = state.at(round_)
        for digest in sorted(current.prepares):
            self._check_prepared(state, round_, digest)
        for digest in sorted(current.commits):
            self._check_committed(state, round_, digest)

    def _waited_for(self, state: _Height, current: _Round) -> bool:
        """The window's deadline passed while it waited for proposals said to be
        coming, and the last of them is in: rank now."""
        return current.extended and not self._awaited(state, current)

    @staticmethod
    def _every_seat_heard(state: _Height, current: _Round) -> bool:
        """AFBFT: every seated candidate's proposal of this round is in, or its proposer
        is excluded as an equivocator: the lowest draw is known, so waiting out the
        window would only add latency."""
        return all(
            seat in current.candidates or seat in state.excluded for seat in state.plan.order
        )

    def _valid(self, state: _Height, proposal: Proposal) -> bool:
        """Validate a proposal's block once, when this node is about to vote for it
        (AFBFT receives one proposal per candidate and builds only the one it picks);
        an invalid one draws this node's accusation."""
        digest = proposal_digest(proposal)
        block = proposal.block
        if isinstance(block, Block) and (
            (block.header.proposer == self.keys.address and proposal.proposer == self.me)
            or any(block_id(b) == digest for b in state.built.values())
        ):
            state.verdicts.setdefault(digest, True)  # we built and executed it ourselves
        if digest not in state.verdicts:
            if isinstance(block, Ordering):
                reason = self._build(state, proposal, block)
            else:
                reason = self.app.validate(block)
                if reason is None and not state.plan.header_proof_ok(block):
                    reason = "the header's VRF proof is not a valid draw by its proposer"
            state.verdicts[digest] = reason is None
            if reason is not None:
                self.stats.invalid_proposals += 1
                state.invalid[(proposal.round, digest)] = proposal
                self._emit(AccusationMessage(state.plan.height, proposal.round, digest, self.me))
        return state.verdicts[digest]

    def _build(self, state: _Height, proposal: Proposal, ordering: Ordering) -> str | None:
        """Build the block an ordering stands for, as every honest validator does: the
        same parent state, context and transactions give the same block and id, so
        prepares and commits are on a block nobody had to send. None if built, else
        why the ordering cannot be a block (its header-level faults: its transactions
        cannot make it invalid, ones invalid where they stand are left out)."""
        built = self.app.build(state.plan.height, ordering, proposal.proposer, proposal.vrf_proof)
        if isinstance(built, str):
            return built
        state.built[proposal_digest(proposal)] = built
        return None

    def _proposal_for(self, state: _Height, round_: int, digest: bytes) -> Proposal | None:
        """The proposal of `round_` whose block is `digest`: an AFBFT ordering is
        built to find out, lowest draw first (only for a digest a quorum voted for,
        so honest validators built it from one of these orderings)."""
        current = state.at(round_)
        for proposal in current.candidates.values():
            block = state.block_of(proposal)
            if block is not None and block_id(block) == digest:
                return proposal
        outputs = state.plan.vrf_outputs
        unbuilt = sorted(
            (
                p
                for p in current.candidates.values()
                if isinstance(p.block, Ordering) and proposal_digest(p) not in state.verdicts
            ),
            key=lambda p: (outputs.get(p.proposer, b""), p.proposer),
        )
        for proposal in unbuilt:
            block = state.block_of(proposal) if self._valid(state, proposal) else None
            if block is not None and block_id(block) == digest:
                return proposal
        return None

    def _choose(self, state: _Height, round_: int) -> None:
        """Prepare this round's proposal, once: the primary's, or under AFBFT the lowest
        VRF draw among the candidates' proposals when the window closes."""
        current = state.at(round_)
        if state is not self._state or current.voted_prepare or not current.window_closed:
            return
        if round_ != state.round:
            return
        outputs = state.plan.vrf_outputs
        ranked = sorted(
            (p for p in current.candidates.values() if p.proposer not in state.excluded),
            key=lambda p: (outputs.get(p.proposer, b""), p.proposer),
        )
        logged = next((d for d, book in current.prepares.items() if self.me in book), None)
        if logged is not None:
            # our prepare of this round, replayed from the WAL after a restart: only
            # that block may be prepared here, even if its proposal is not seen again
            found = self._proposal_for(state, round_, logged)
            ranked = [p for p in ranked if p is found]
        chosen = next((p for p in ranked if self._valid(state, p)), None)
        block = state.block_of(chosen) if chosen is not None else None
        if chosen is None or block is None or state is not self._state:
            return
        current.proposal = chosen
        if self._is_voter(state):
            current.voted_prepare = True
            digest = block_id(block)
            # AFBFT's n² prepares leave the echo out; its round changes carry it instead
            echo = b"" if state.plan.kind is EngineKind.AFBFT else chosen.signature
            self._emit(Vote(Kind.PREPARE, state.plan.height, round_, digest, self.me, echo))

    def _justified(self, plan: HeightPlan, proposal: Proposal) -> bool:
        """PBFT's new-view check: a quorum of valid round changes for this round, and
        the block is the highest prepared one among them (if any was prepared)."""
        senders = set()
        for change in proposal.justification:
            if (
                change.height != plan.height
                or change.round != proposal.round
                or change.validator not in plan.voters
                or change.validator in senders
                or not verify(self.config.chain_id, change)
                or not all(self._valid_prepared(plan, c) for c in change.prepared)
            ):
                return False
            senders.add(change.validator)
        if len(senders) < plan.quorum:
            return False
        required = _highest_prepared_block(proposal.justification)
        return required is None or (
            isinstance(proposal.block, Block) and block_id(required) == block_id(proposal.block)
        )

    def _valid_prepared(self, plan: HeightPlan, cert: PreparedCertificate) -> bool:
        if not body_matches_header(cert.block):
            return False
        digest = block_id(cert.block)
        voters = set()
        for vote in cert.prepares:
            if (
                vote.kind is not Kind.PREPARE
                or vote.height != plan.height
                or vote.round != cert.round
                or vote.block_hash != digest
                or vote.validator not in plan.voters
                or vote.validator in voters
                or not verify(self.config.chain_id, vote)
            ):
                return False
            voters.add(vote.validator)
        return len(voters) >= plan.quorum

    def _on_vote(self, state: _Height, vote: Vote) -> None:
        if vote.validator not in state.plan.voters:
            self.stats.dropped_unknown_sender += 1
            return
        book = (
            state.at(vote.round).prepares
            if vote.kind is Kind.PREPARE
            else state.at(vote.round).commits
        )
        votes = book.setdefault(vote.block_hash, {})
        if vote.validator in votes:
            self.stats.dropped_duplicate += 1
            return
        votes[vote.validator] = vote
        if vote.kind is Kind.PREPARE:
            self._catch_split_proposal(state, vote)
            self._check_prepared(state, vote.round, vote.block_hash)
        else:
            self._check_committed(state, vote.round, vote.block_hash)

    def _check_prepared(self, state: _Height, round_: int, digest: bytes) -> None:
        if state is not self._state:
            return  # the height was decided while this message was being handled
        current = state.at(round_)
        prepares = current.prepares.get(digest, {})
        if len(prepares) < state.plan.quorum:
            return
        proposal = self._proposal_for(state, round_, digest)
        block = state.block_of(proposal) if proposal is not None else None
        if proposal is None or block is None or state is not self._state:
            return
        if state.prepared is None or state.prepared.round < round_:
            ordered = tuple(prepares[k] for k in sorted(prepares))
            state.prepared = PreparedCertificate(round_, block, ordered)
        if (
            self._is_voter(state)
            and not current.voted_commit
            and round_ == state.round
            and self._valid(state, proposal)
        ):
            current.voted_commit = True
            self._emit(Vote(Kind.COMMIT, state.plan.height, round_, digest, self.me))

    def _check_committed(self, state: _Height, round_: int, digest: bytes) -> None:
        if state is not self._state:
            return  # already decided (our own vote completed the quorum re-entrantly)
        commits = state.at(round_).commits.get(digest, {})
        if len(commits) < state.plan.quorum:
            return
        block = state.known_block(digest)
        if block is None:
            proposal = self._proposal_for(state, round_, digest)
            block = state.block_of(proposal) if proposal is not None else None
        if block is None or state is not self._state:
            return  # decided, but we have not seen the block: it arrives or we sync
        certificate = certificate_from(list(commits.values()), state.plan.height, round_, digest)
        self._decide(dataclasses.replace(block, certificate=certificate), round_)

    def _decide(self, block: Block, round_changes: int) -> None:
        self.app.commit(block)
        self.stats.commits += 1
        self._actions.append(Committed(block, round_changes))
        height = block.header.height
        if height % self.config.checkpoint_interval == 0 and self.me in self._validators:
            self._emit(Checkpoint(height, block_id(block), block.header.state_root, self.me))
        self._start_height()

    # -- round changes --------------------------------------------------------------

    def _on_round_change(self, state: _Height, change: RoundChange) -> None:
        plan = state.plan
        if change.validator not in plan.voters:
            self.stats.dropped_unknown_sender += 1
            return
        if not all(self._valid_prepared(plan, c) for c in change.prepared):
            self.stats.dropped_malformed += 1
            return
        changes = state.round_changes.setdefault(change.round, {})
        if change.validator in changes:
            self.stats.dropped_duplicate += 1
            return
        changes[change.validator] = change
        for shown in change.prepared_proposal:
            self._check_split(state, shown)
        if change.round > state.round and len(changes) >= plan.weak_quorum:
            self._enter_round(state, change.round)  # f+1 want it: at least one honest does
        elif change.round == state.round:
            self._maybe_propose(state)

    # -- evidence -------------------------------------------------------------------

    def _report_equivocation(self, state: _Height, first: Proposal, second: Proposal) -> None:
        state.excluded.add(first.proposer)
        key = (first.round, first.proposer)
        if key in state.reported:
            return
        state.reported.add(key)
        self.stats.equivocations += 1
        evidence = EquivocationEvidence(signed_proposal(first), signed_proposal(second))
        self._actions.append(ReportEvidence(evidence))

    def _catch_split_proposal(self, state: _Height, vote: Vote) -> None:
        """A prepare for another block than the one our primary sent us, carrying the
        primary's signature on it, proves the primary equivocated."""
        if not vote.proposal_signature:
            return  # AFBFT: the round changes show what each validator prepared
        known = [p for (r, _), p in state.seen_proposals.items() if r == vote.round]
        if any(proposal_digest(p) == vote.block_hash for p in known):
            return  # a block we have seen: nothing hidden from us
        for ours in known:
            self._check_split(
                state,
                SignedProposal(
                    state.plan.height,
                    vote.round,
                    vote.block_hash,
                    ours.proposer,
                    vote.proposal_signature,
                ),
            )

    def _check_split(self, state: _Height, other: SignedProposal) -> None:
        """`other`, if its proposer really signed it, is a second block beside the one
        we received from that proposer in that round: evidence of equivocation."""
        key = (other.round, other.proposer)
        ours = state.seen_proposals.get(key)
        if (
            ours is None
            or key in state.reported
            or other.height != state.plan.height
            or proposal_digest(ours) == other.block_hash
        ):
            return
        data = proposal_signing_bytes(
            self.config.chain_id, other.height, other.round, other.block_hash
        )
        if not verify_signature(other.proposer, data, other.signature):
            return
        state.excluded.add(other.proposer)
        state.reported.add(key)
        self.stats.equivocations += 1
        self._actions.append(ReportEvidence(EquivocationEvidence(signed_proposal(ours), other)))

    def _on_accusation(self, state: _Height, accusation: AccusationMessage) -> None:
        key = (accusation.round, accusation.block_hash)
        book = state.accusations.setdefault(key, {})
        if accusation.validator not in state.plan.voters or accusation.validator in book:
            self.stats.dropped_duplicate += 1
            return
        book[accusation.validator] = accusation
        if len(book) < state.plan.quorum or key in state.reported:
            return
        proposal = state.invalid.get(key)
        if proposal is None:
            return  # we found nothing wrong with it (or never saw it)
        state.reported.add(key)
        accusations = tuple(Accusation(v, book[v].signature) for v in sorted(book))
        self._actions.append(
            ReportEvidence(InvalidProposalEvidence(signed_proposal(proposal), accusations))
        )

    # -- checkpoints ----------------------------------------------------------------

    def _on_checkpoint(self, checkpoint: Checkpoint) -> None:
        if (
            checkpoint.height % self.config.checkpoint_interval
            or checkpoint.height > self.height + self.config.future_heights
        ):
            self.stats.dropped_malformed += 1  # no checkpoint is due there: keep no book
            return
        book = self._checkpoints.setdefault(checkpoint.height, {})
        if checkpoint.validator in book:
            self.stats.dropped_duplicate += 1
            return
        book[checkpoint.validator] = checkpoint
        plan = self._state.plan if self._state else None
        if plan is None:
            return
        agreeing = [
            c
            for c in book.values()
            if (c.block_hash, c.state_root) == (checkpoint.block_hash, checkpoint.state_root)
        ]
        if len(agreeing) < plan.quorum or checkpoint.height <= self.stats.stable_checkpoint:
            return
        mine = self.app.block_at(checkpoint.height)
        if mine is not None and block_id(mine) != checkpoint.block_hash:
            self.stats.checkpoint_mismatches += 1
            return
        self.stats.stable_checkpoint = checkpoint.height
        self._actions.append(
            CheckpointCertified(
                checkpoint, tuple(sorted(agreeing[: plan.quorum], key=lambda c: c.validator))
            )
        )
        for old in [h for h in self._checkpoints if h <= checkpoint.height]:
            del self._checkpoints[old]  # garbage-collect everything the checkpoint covers

    # -- catching up ----------------------------------------------------------------

    def _on_sync_request(self, request: SyncRequest) -> None:
        last = self.app.last_block().header.height
        blocks = []
        for height in range(
            request.from_height, min(last, request.from_height + self.config.sync_batch - 1) + 1
        ):
            block = self.app.block_at(height)
            if block is None:
                break
            blocks.append(block)
        if blocks:
            response = sign(self.config.chain_id, SyncResponse(tuple(blocks), self.me), self.keys)
            self._actions.append(Send(request.validator, wire(response), Kind.SYNC_RESPONSE))

    def _on_sync_response(self, response: SyncResponse) -> None:
        for block in response.blocks:
            state = self._state
            if state is None or block.header.height != state.plan.height:
                continue
            plan = state.plan
            if not verify_certificate(self.config.chain_id, block, plan.voters, plan.quorum):
                self.stats.dropped_bad_signature += 1
                return
            if self.app.validate(block) is not None or not plan.header_proof_ok(block):
                self.stats.dropped_malformed += 1
                return
            self.stats.synced_blocks += 1
            self._decide(block, block.certificate.round)
        if len(response.blocks) >= self.config.sync_batch:
            self._last_sync_request = -(10**12)  # a full batch: there is more, ask now
            self._request_sync(response.validator)

    # -- sending --------------------------------------------------------------------

    def _emit(self, message: Message) -> None:
        """Sign, broadcast, and take part ourselves (our own vote counts too)."""
        signed = sign(self.config.chain_id, message, self.keys)
        step = (
            (signed.height, signed.round)
            if isinstance(signed, Proposal | Vote | RoundChange)
            else None
        )
        self._actions.append(Broadcast(wire(signed), kind_of(signed), step, signed))
        self._dispatch(signed)


def _highest_prepared_block(changes: tuple[RoundChange, ...]) -> Block | None:
    best: PreparedCertificate | None = None
    for change in changes:
        for cert in change.prepared:
            if best is None or cert.round > best.round:
                best = cert
    return best.block if best is not None else None


EngineFactory = Callable[[EngineConfig, AccountKeys, ConsensusApp], BftEngine]
