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

Only messages whose signature holds are checked ahead (the engine drops the others at
once). Signatures that fail are charged to the peer's budget: honest validators
never send blocks with forged signatures, so a peer whose budget is overdrawn has its
messages holding unchecked blocks dropped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from medchain.app import ANONYMOUS_METHODS, Ledger, SignatureCheck
from medchain.consensus import signed_txs
from medchain.node._budget import Budgets
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
        deliver: Callable[[bytes, bytes], None],
        peer_name: Callable[[bytes], str],
    ) -> None:
        """`ledger()` is the node's ledger at the time (it is replaced after a failed
        commit); `deliver(peer, payload)` hands a message to the engine; `peers` are
        the budgets of the peers, by `peer_name(key)`."""
        self._chain_id = chain_id
        self._ledger = ledger
        self._verifier = verifier
        self._peers = peers
        self._deliver = deliver
        self._peer_name = peer_name
        self._queue: deque[_Waiting] = deque()
        self._draining: asyncio.Task[None] | None = None
        self.checked_ahead = 0
        """Messages whose blocks had signatures to check before the engine saw them."""
        self.dropped = 0
        """Messages dropped: their peer's budget was overdrawn by forged signatures."""

    def receive(self, peer: bytes, payload: bytes) -> None:
        checks = self._checks(payload)
        if checks:
            if self._peers.wait_s(self._peer_name(peer)) > 0:
                self.dropped += 1
                return
            self.checked_ahead += 1
            who = "peer:" + self._peer_name(peer)
            pending = asyncio.ensure_future(self._verifier.verify(checks, who))
            self._queue.append(_Waiting(peer, payload, checks, pending))
        elif self._queue:
            self._queue.append(_Waiting(peer, payload, [], None))  # behind one being checked
        else:
            self._deliver(peer, payload)
            return
        if self._draining is None or self._draining.done():
            self._draining = asyncio.ensure_future(self._drain())

    async def _drain(self) -> None:
        while self._queue:
            waiting = self._queue[0]
            if waiting.pending is not None:
                try:
                    outcomes = await waiting.pending
                except Exception:
                    outcomes = []
                self._charge(waiting, outcomes)
            self._queue.popleft()
            self._deliver(waiting.peer, waiting.payload)

    def _charge(self, waiting: _Waiting, outcomes: list[bool]) -> None:
        failed = [c for c, ok in zip(waiting.checks, outcomes, strict=False) if not ok]
        if not failed:
            return
        name = self._peer_name(waiting.peer)
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


@dataclass(frozen=True, slots=True)
class _Waiting:
    peer: bytes
    payload: bytes
    checks: list[SignatureCheck]
    pending: asyncio.Future[list[bool]] | None
