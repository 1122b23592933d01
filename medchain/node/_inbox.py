"""`ConsensusInbox`: consensus messages from peers to the engine in the order they came,
the signatures of the transactions they carry checked in the verifier's workers first.

Why: the engine is synchronous, and validating a block runs every transaction's
signature check on the loop. The transactions of a proposal have usually been gossiped
and verified on admission, so their checks are cached; a block this node has not seen
the transactions of (a proposal from a primary that kept them to itself, blocks fetched
to catch up) would cost up to `max_block_txs` Ed25519 checks and
`max_block_anonymous_txs` ring checks on the loop. Here those checks run in the
workers first; the engine then finds them cached. Messages after one being checked
wait behind it, so the engine still sees every peer's messages in arrival order.

AFBFT orderings arrive from the `OrderingRelay` by their transactions' ids: they wait
here while their bodies are taken from the mempool (or fetched from the proposer) and
the signatures not checked yet are checked, urgently (`Verifier`), and reach the engine
decoded, in order with the rest. The engine is told of each as it starts waiting
(`ProposalComing`), so AFBFT's window does not close on it meanwhile. Checking every
candidate's ordering, not only the winner's, costs nothing extra: gossip brings each
node the same transactions to check once.

Only messages whose signature holds are checked ahead (the engine drops the others at
once). Signatures that fail are charged to the peer's budget: honest validators
never send blocks with forged signatures, so a peer whose budget is overdrawn has its
messages holding unchecked blocks dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from medchain.app import ANONYMOUS_METHODS, Ledger, SignatureCheck
from medchain.consensus import CompactOrdering, Ordering, Proposal, signed_txs
from medchain.node._budget import Budgets
from medchain.node._ordering_relay import OrderingRelay
from medchain.node._verifier import Verifier
from medchain.types import MedchainError, Tx, tx_id

log = logging.getLogger("medchain.node")


class ConsensusInbox:
    def __init__(
        self,
        chain_id: str,
        ledger: Callable[[], Ledger],
        verifier: Verifier,
        peers: Budgets,
        deliver: Callable[[bytes, bytes, Proposal | None], None],
        peer_name: Callable[[bytes], str],
        relay: OrderingRelay,
        coming: Callable[[CompactOrdering], None] = lambda compact: None,
    ) -> None:
        """`ledger()` is the node's ledger at the time (it is replaced after a failed
        commit); `deliver(peer, payload, decoded)` hands a message to the engine
        (`decoded` for a completed ordering); `peers` are the budgets of the peers,
        by `peer_name(key)`; `relay` completes orderings sent by ids, and `coming`
        is told of each authentic one as it starts waiting."""
        self._chain_id = chain_id
        self._ledger = ledger
        self._verifier = verifier
        self._peers = peers
        self._deliver = deliver
        self._peer_name = peer_name
        self._relay = relay
        self._coming = coming
        self._queue: deque[_Waiting] = deque()
        self._draining: asyncio.Task[None] | None = None
        self.checked_ahead = 0
        """Messages whose blocks had signatures to check before the engine saw them."""
        self.dropped = 0
        """Messages dropped: their peer's budget was overdrawn by forged signatures."""
        self.orderings_dropped = 0
        """Relayed orderings dropped: forged, or their bodies could not be had."""

    def receive(self, peer: bytes, payload: bytes) -> None:
        checks = self._checks(payload)
        if checks:
            if self._overdrawn(peer):
                return
            self.checked_ahead += 1
            self._wait_for(peer, payload, self._checked(peer, checks), relayed=False)
        elif self._queue:
            self._wait_for(peer, payload, None, relayed=False)  # behind one being checked
        else:
            self._deliver(peer, payload, None)

    def receive_ordering(self, peer: bytes, payload: bytes, compact: CompactOrdering) -> None:
        """An ordering relayed by ids (`payload` its frame): delivered decoded once its
        bodies are in hand and their signatures checked."""
        if not compact.authentic(self._chain_id):
            self.orderings_dropped += 1  # the engine would drop it: fetch nothing for it
            return
        if self._overdrawn(peer):
            return
        self._coming(compact)
        self._wait_for(peer, payload, self._completed(peer, compact), relayed=True)

    def _overdrawn(self, peer: bytes) -> bool:
        if self._peers.wait_s(self._peer_name(peer)) > 0:
            self.dropped += 1
            return True
        return False

    def _wait_for(
        self,
        peer: bytes,
        payload: bytes,
        work: Coroutine[Any, Any, _Outcome] | None,
        *,
        relayed: bool,
    ) -> None:
        pending = None if work is None else asyncio.ensure_future(work)
        self._queue.append(_Waiting(peer, payload, pending, relayed))
        if self._draining is None or self._draining.done():
            self._draining = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            waiting = self._queue[0]
            outcome: _Outcome = None
            if waiting.pending is not None:
                try:
                    outcome = await waiting.pending
                except Exception:  # checked in the engine instead; an ordering is lost
                    outcome = _DROP if waiting.relayed else None
            self._queue.popleft()
            if not isinstance(outcome, _Drop):
                self._deliver(waiting.peer, waiting.payload, outcome)

    async def _checked(self, peer: bytes, checks: list[SignatureCheck]) -> _Outcome:
        await self._verify(peer, checks)
        return None

    async def _completed(self, peer: bytes, compact: CompactOrdering) -> _Outcome:
        proposal = await self._relay.complete(peer, compact)
        if isinstance(proposal, str):
            self.orderings_dropped += 1
            log.info(
                "dropped an ordering of %s for height %d: %s",
                self._peer_name(peer),
                compact.shell.height,
                proposal,
            )
            return _DROP
        assert isinstance(proposal.block, Ordering)
        checks = self._tx_checks(proposal.block.txs)
        if checks:
            self.checked_ahead += 1
            await self._verify(peer, checks)
        return proposal

    async def _verify(self, peer: bytes, checks: list[SignatureCheck]) -> None:
        """Run `checks` ahead of any source's (a consensus message waits for them),
        charging failures to the peer."""
        who = "peer:" + self._peer_name(peer)
        outcomes = await self._verifier.verify(checks, who, urgent=True)
        failed = [c for c, ok in zip(checks, outcomes, strict=False) if not ok]
        if not failed:
            return
        name = self._peer_name(peer)
        self._peers.bucket(name).take(sum(c.cost for c in failed), self._peers.now())
        log.warning(
            "peer %s sent a signed block holding %d transaction(s) whose signature does not verify",
            name,
            len(failed),
        )

    def _checks(self, payload: bytes) -> list[SignatureCheck]:
        """The signature checks, not known yet, of the transactions the message carries
        (in blocks, or in an AFBFT ordering), if its sender's signature holds."""
        try:
            txs = signed_txs(self._chain_id, payload)
        except Exception:
            return []
        return self._tx_checks(txs)

    def _tx_checks(self, txs: tuple[Tx, ...]) -> list[SignatureCheck]:
        ledger = self._ledger()
        cache = self._verifier.cache
        checks = []
        for tx in txs:
            if tx.method not in ANONYMOUS_METHODS and tx_id(tx) in cache:
                continue  # the usual case: verified when it was gossiped
            try:
                check = ledger.signature_check(tx)
            except MedchainError:
                continue  # not acceptable as it stands: validation says so, at no cost
            if self._verifier.outcome(check) is None:
                checks.append(check)
        return checks

    async def close(self) -> None:
        if self._draining is not None:
            self._draining.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._draining
        for waiting in self._queue:
            if waiting.pending is not None:
                waiting.pending.cancel()
        self._queue.clear()


class _Drop:
    """A waiting message that is not to reach the engine."""


_DROP = _Drop()

_Outcome = Proposal | None | _Drop
"""What a waiting message's work ends in: the completed ordering to deliver, None to
deliver the bytes as they came, or `_DROP`."""


@dataclass(frozen=True, slots=True)
class _Waiting:
    peer: bytes
    payload: bytes
    pending: asyncio.Future[_Outcome] | None
    relayed: bool
    """A relayed ordering's frame: the engine can take it only decoded."""
