"""`Admission`: transactions from clients and peers into the mempool, their signatures
verified off the event loop, the work a source makes the node do bounded.

A request goes through three steps. On the loop, the mempool's cheap checks (room,
duplicates, form, nonce, key image, the ring against its scope: `Mempool.prepare`)
refuse what they can before any signature work. In the verifier's workers, the
signatures left are checked. On the loop again, the transactions are added in the order
their source sent them (`Mempool.add` finds their checks in the signature cache), so the
mempool's state only ever changes on the loop. A request of a few signed transactions
from a source in good standing skips the workers: its few Ed25519 checks cost the loop
less than handing them over and back (`INLINE_TXS`).

What a source sends draws on its budget (`Budgets`): the verification work of every
transaction that is not admitted (a forgery, a refusal found after verifying) is the
source's to pay; that of admitted ones is given back. A client is refused with
`RateLimited` (HTTP 429) while its budget is overdrawn, and with `VerifierBusy` (503)
while the workers have more than `max_backlog` units queued; a peer's frames are
dropped while its budget is overdrawn. A client request may hold at most
`max_anonymous_per_request` anonymous transactions (`TooManyAnonymous`, 400).
Transactions the node itself makes (evidence) have no budget."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medchain.app import (
    ANONYMOUS_METHODS,
    ED25519_COST,
    RING_MEMBER_COST,
    InvalidSignature,
    SignatureCheck,
)
from medchain.mempool import Mempool
from medchain.node._budget import Budget, Budgets, client_key
from medchain.node._config import AdmissionConfig
from medchain.node._verifier import Verifier
from medchain.types import MedchainError, Tx

YIELD_EVERY = 100
"""Transactions checked or added between two chances for the loop to do other work."""
INLINE_TXS = 64
"""A request of at most this many signed transactions (and no anonymous one), from a
source with at least half its budget left, has its signatures checked on the loop: at
most ~4 ms, less than the hand-over to a worker costs the loop for a few. Rings,
larger batches and sources that sent forgeries lately go to the workers."""


class RateLimited(MedchainError):
    """A client made the node verify more than its budget of signatures that did not
    get a transaction admitted; it must wait `retry_after_s`."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class VerifierBusy(MedchainError):
    """The node's signature workers are behind: retry shortly."""

    code = "verifier_busy"


class TooManyAnonymous(MedchainError):
    """A client request holds more anonymous transactions than one may."""

    code = "too_many_anonymous"


@dataclass(frozen=True, slots=True)
class Source:
    """Who sent transactions: a client (by address), a peer (by name) or the node."""

    kind: str
    key: str

    @classmethod
    def client(cls, host: str | None) -> Source:
        return NODE if host is None else cls("client", client_key(host))

    @classmethod
    def peer(cls, name: str) -> Source:
        return cls("peer", name)


NODE = Source("node", "")


@dataclass(slots=True)
class AdmissionStats:
    """Counters served at /metrics as medchain_admission_*_total."""

    clients_rate_limited: int = 0
    """Client requests refused because the client's budget was overdrawn."""
    peer_frames_dropped: int = 0
    """Transaction frames of peers dropped because the peer's budget was overdrawn."""
    clients_busy: int = 0
    """Client requests refused because the verifier's backlog was full."""
    signatures_failed: int = 0
    """Transactions refused because their signature did not verify."""
    work_units_charged: int = 0
    """Verification work sources paid for (transactions not admitted), in Ed25519 checks."""


class Admission:
    def __init__(
        self,
        mempool: Mempool,
        verifier: Verifier,
        config: AdmissionConfig | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        preflight: Callable[[Tx], None] | None = None,
    ) -> None:
        """`preflight` may refuse a transaction once its signature passed
        (`LedgerApp.preflight`: a call the contracts would refuse); peers' are not
        dry-run, so what they relay spreads as before."""
        config = config if config is not None else AdmissionConfig()
        self.mempool = mempool
        self.preflight = preflight
        self.verifier = verifier
        self.max_backlog = config.max_backlog
        self.max_anonymous = config.max_anonymous_per_request
        self.clients = Budgets(Budget(config.client_rate, config.client_burst), clock=clock)
        self.peers = Budgets(Budget(config.peer_rate, config.peer_burst), clock=clock)
        self.stats = AdmissionStats()
        self._tails: dict[Source, asyncio.Future[None]] = {}
        """Per source, the request whose transactions are added last so far."""

    def _budgets(self, source: Source) -> Budgets | None:
        return {"client": self.clients, "peer": self.peers}.get(source.kind)

    def wait_s(self, source: Source) -> float:
        """Seconds until `source` may send transactions again (0: now)."""
        budgets = self._budgets(source)
        return 0.0 if budgets is None else budgets.wait_s(source.key)

    async def admit(self, txs: Sequence[Tx], source: Source) -> list[bool | MedchainError]:
        """Admit `txs`, each on its own: per transaction True (admitted), False
        (already pending) or the error it was refused with. Raises RateLimited,
        TooManyAnonymous or VerifierBusy, having admitted nothing, when the source
        must come back later. Gives the loop back every `YIELD_EVERY` transactions."""
        budgets = self._budgets(source)
        self._require_budget(source, budgets)
        if source.kind == "client":
            self._require_few_anonymous(txs, source, budgets)
        if (
            len(txs) <= INLINE_TXS
            and source not in self._tails  # or they would overtake the source's earlier ones
            and not any(tx.method in ANONYMOUS_METHODS for tx in txs)
            and self._in_good_standing(source, budgets)
        ):
            return self._admit_here(txs, source, budgets)
        # charge the most the checks can cost now, before giving the loop back, so the
        # source's next request sees it; what they did not cost is given back below
        reserved = self._most_work(txs) if budgets is not None else 0
        if budgets is not None:
            budgets.bucket(source.key).take(reserved, budgets.now())
        loop = asyncio.get_running_loop()
        previous = self._tails.get(source)
        mine: asyncio.Future[None] = loop.create_future()
        self._tails[source] = mine
        charged = 0
        dry_run = self._preflight_for(source)
        try:
            results, checks, unknown = await self._prepare(txs)
            charged = sum(check.cost for index, check in checks if index in unknown)
            if unknown and source.kind == "client" and self.verifier.backlog >= self.max_backlog:
                self.stats.clients_busy += 1
                charged = 0
                raise VerifierBusy(
                    f"this node is busy verifying signatures ({self.verifier.backlog:,} "
                    "units queued); retry in a second"
                )
            who = f"{source.kind}:{source.key}"
            outcomes = await self.verifier.verify([check for _, check in checks], who)
            if previous is not None:
                await previous  # add in the order the source sent them (nonces)
            for number, ((index, check), passed) in enumerate(zip(checks, outcomes, strict=True)):
                if number and number % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
                if not passed:
                    results[index] = check.refusal()
                    self.stats.signatures_failed += 1
                    continue
                try:
                    results[index] = self.mempool.add(txs[index], preflight=dry_run)
                except MedchainError as exc:
                    results[index] = exc
                    continue
                if index in unknown:
                    charged -= check.cost  # admitted: its work is given back
        finally:
            mine.set_result(None)
            if self._tails.get(source) is mine:
                del self._tails[source]
            if budgets is not None:
                budgets.bucket(source.key).give_back(reserved - charged, budgets.now())
            self.stats.work_units_charged += charged
        return results

    def _preflight_for(self, source: Source) -> Callable[[Tx], None] | None:
        return None if source.kind == "peer" else self.preflight

    @staticmethod
    def _in_good_standing(source: Source, budgets: Budgets | None) -> bool:
        """Whether at least half the source's budget is left: one that sent forgeries
        lately has its checks done by the workers, off the loop, whatever their size."""
        if budgets is None:
            return True
        return budgets.bucket(source.key).level(budgets.now()) >= budgets.budget.burst / 2

    def _admit_here(
        self, txs: Sequence[Tx], source: Source, budgets: Budgets | None
    ) -> list[bool | MedchainError]:
        """A few signed transactions, checked on the loop: cheaper than handing them to
        a worker and back. `Mempool.add` checks the signature last, so only a refusal
        for it means work was done."""
        results: list[bool | MedchainError] = []
        failed = 0
        dry_run = self._preflight_for(source)
        for tx in txs:
            try:
                results.append(self.mempool.add(tx, preflight=dry_run))
            except InvalidSignature as exc:
                results.append(exc)
                failed += 1
            except MedchainError as exc:
                results.append(exc)
        if failed:
            self.stats.signatures_failed += failed
            self.stats.work_units_charged += failed * ED25519_COST
            if budgets is not None:
                budgets.bucket(source.key).take(failed * ED25519_COST, budgets.now())
        return results

    async def _prepare(
        self, txs: Sequence[Tx]
    ) -> tuple[list[bool | MedchainError], list[tuple[int, SignatureCheck]], set[int]]:
        """The mempool's checks but the signatures: each transaction's refusal, or its
        signature check; which of those checks are not known (passed or failed) yet."""
        results: list[bool | MedchainError] = [False] * len(txs)
        checks: list[tuple[int, SignatureCheck]] = []
        for index, tx in enumerate(txs):
            if index and index % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            try:
                check = self.mempool.prepare(tx)
            except MedchainError as exc:
                results[index] = exc
                continue
            if check is not None:
                checks.append((index, check))
        unknown = {index for index, check in checks if self.verifier.outcome(check) is None}
        return results, checks, unknown

    def _most_work(self, txs: Sequence[Tx]) -> int:
        """What checking every signature of `txs` could cost, rings at the largest."""
        ring = self.mempool.ledger.genesis.params.max_ring_size * RING_MEMBER_COST
        return sum(ring if tx.method in ANONYMOUS_METHODS else ED25519_COST for tx in txs)

    def _require_few_anonymous(
        self, txs: Sequence[Tx], source: Source, budgets: Budgets | None
    ) -> None:
        """Refuse a request holding too many anonymous transactions, charged as if each
        ring were checked at the largest size: sent again, it is turned away unread."""
        anonymous = sum(1 for tx in txs if tx.method in ANONYMOUS_METHODS)
        if anonymous <= self.max_anonymous:
            return
        if budgets is not None:
            ring = self.mempool.ledger.genesis.params.max_ring_size
            units = anonymous * ring * RING_MEMBER_COST
            budgets.bucket(source.key).take(units, budgets.now())
            self.stats.work_units_charged += units
        raise TooManyAnonymous(
            f"this request holds {anonymous} anonymous transactions, one may hold "
            f"{self.max_anonymous}; send them in several requests"
        )

    def _require_budget(self, source: Source, budgets: Budgets | None) -> None:
        if budgets is None:
            return
        wait = budgets.wait_s(source.key)
        if wait <= 0:
            return
        if source.kind == "peer":
            self.stats.peer_frames_dropped += 1
        else:
            self.stats.clients_rate_limited += 1
        retry = max(1, math.ceil(wait))
        raise RateLimited(
            f"{source.kind} {source.key} made this node verify more signatures of "
            f"transactions it did not admit than its budget allows ({budgets.budget.rate:,} "
            f"Ed25519 checks a second, a ring member counting as {RING_MEMBER_COST}); retry "
            f"in {retry} s",
            retry,
        )
