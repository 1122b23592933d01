"""Channel 5: AFBFT orderings relayed by their transactions' ids, and the bodies a
receiver lacks fetched from the proposer.

Why: under AFBFT every seated candidate proposes each height, and before this relay
each sent every transaction's body to every validator, who decoded them all: K times
what a PBFT replica decodes, and the largest share of a validator's CPU. The bodies
were nearly all at the receiver already, gossiped to it on admission. So a candidate
sends a `CompactOrdering`: the signed proposal with ids in place of bodies, but for
the bodies its node decides peers may lack (handed to it by a client moments before).
The receiver takes each other body from what it holds by id (its mempool, and gossip
it is admitting) and asks the candidate, once, for any it still lacks.

A candidate keeps the bodies of its last `KEPT_ORDERINGS` orderings to serve; it
answers each peer at most `ANSWERS_PER_PEER` times per ordering, with only the bodies
asked for, so a peer cannot make it send much more than the ordering itself. A body
is taken only if it hashes to the id the candidate signed (`CompactOrdering.proposal`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from medchain.consensus import CompactOrdering, Ordering, Proposal, unwire_compact
from medchain.node._peer_requests import ID_BYTES, PeerLink, PendingRequests
from medchain.types import DecodeError, Tx, decode, decode_tx_bytes, encode

ORDERING_CHANNEL = 5
_ORDERING = 1
_WANT = 2
_BODIES = 3

KEPT_ORDERINGS = 16
"""Own orderings whose bodies are kept to serve: every round of the last few heights
(a receiver asks within moments of the ordering's arrival)."""

ANSWERS_PER_PEER = 2
"""Answers one peer gets per ordering: a second ask covers a first answer lost."""

FETCH_TIMEOUT_S = 2.0
"""How long a receiver waits for the bodies it asked for. Without them the ordering
is dropped, as if never received: AFBFT's window closes on the other candidates."""


@dataclass(frozen=True, slots=True)
class _Want:
    ordering: bytes
    """The ordering id the candidate signed."""
    indexes: tuple[int, ...]
    """Positions in the ordering of the bodies wanted, ascending."""


@dataclass(slots=True)
class RelayStats:
    orderings_sent: int = 0
    orderings_received: int = 0
    txs_sent_along: int = 0
    """Bodies sent in this node's orderings (those its peers were likely to lack)."""
    completed_without_asking: int = 0
    """Received orderings whose every body was held here or sent along."""
    txs_fetched: int = 0
    fetches_failed: int = 0
    txs_served: int = 0
    requests_refused: int = 0
    """Asks for bodies not served: unknown ordering, bad positions, or asked too often."""
    malformed: int = 0


class OrderingRelay:
    """`frame` turns this node's signed ordering into the frame to broadcast;
    `on_frame` takes every channel-5 frame and returns a received ordering for the
    consensus inbox to `complete`; asks and answers for bodies are handled here."""

    def __init__(
        self,
        link: PeerLink,
        lookup: Callable[[bytes], Tx | None],
        max_txs: int,
        *,
        timeout_s: float = FETCH_TIMEOUT_S,
    ) -> None:
        """`lookup(tx_id)` finds a body this node holds (its mempool); `max_txs` bounds
        an ordering (the chain's `max_block_txs`)."""
        self._link = link
        self._lookup = lookup
        self.max_txs = max_txs
        self.timeout_s = timeout_s
        self._own: OrderedDict[bytes, tuple[Tx, ...]] = OrderedDict()
        self._answered: dict[tuple[bytes, bytes], int] = {}
        """(ordering id, peer) -> answers given."""
        self._pending: PendingRequests[bytes] = PendingRequests()
        self.stats = RelayStats()

    def frame(self, proposal: Proposal, send_body: Callable[[bytes], bool]) -> bytes:
        """The frame carrying this node's signed ordering, with the bodies
        `send_body(tx_id)` says peers lack; all its bodies are kept to serve."""
        assert isinstance(proposal.block, Ordering)
        compact = CompactOrdering.of(proposal, send_body)
        self.stats.txs_sent_along += len(compact.sent)
        ordering = compact.digest()
        self._own[ordering] = proposal.block.txs
        self._own.move_to_end(ordering)
        while len(self._own) > KEPT_ORDERINGS:
            forgotten, _ = self._own.popitem(last=False)
            for key in [k for k in self._answered if k[0] == forgotten]:
                del self._answered[key]
        self.stats.orderings_sent += 1
        return bytes([ORDERING_CHANNEL, _ORDERING]) + encode(compact)

    def close(self) -> None:
        self._pending.cancel()

    def peer_gone(self, peer: bytes) -> None:
        self._pending.peer_gone(peer)

    # -- frames from peers ------------------------------------------------------------

    def on_frame(self, peer: bytes, payload: bytes) -> CompactOrdering | None:
        """A channel-5 frame from `peer` (the channel byte stripped): the ordering it
        carries, if it is one; None once an ask or answer is handled, or the frame
        dropped as malformed."""
        kind, body = payload[:1], payload[1:]
        if kind == bytes([_ORDERING]):
            try:
                compact = unwire_compact(body, self.max_txs)
            except DecodeError:
                self.stats.malformed += 1
                return None
            self.stats.orderings_received += 1
            return compact
        if kind in (bytes([_WANT]), bytes([_BODIES])) and len(body) >= ID_BYTES:
            request_id = int.from_bytes(body[:ID_BYTES], "big")
            if kind == bytes([_WANT]):
                self._serve(peer, request_id, body[ID_BYTES:])
            else:
                self._on_bodies(peer, request_id, body[ID_BYTES:])
            return None
        self.stats.malformed += 1
        return None

    def _serve(self, peer: bytes, request_id: int, body: bytes) -> None:
        try:
            want = decode(_Want, body)
        except DecodeError:
            self.stats.malformed += 1
            return
        txs = self._own.get(want.ordering)
        key = (want.ordering, peer)
        answered = self._answered.get(key, 0)
        indexes = want.indexes
        if (
            txs is None
            or answered >= ANSWERS_PER_PEER
            or not indexes
            or list(indexes) != sorted(set(indexes))
            or not 0 <= indexes[0] <= indexes[-1] < len(txs)
        ):
            self.stats.requests_refused += 1
            bodies: tuple[bytes, ...] = ()  # an empty answer: the asker stops waiting
        else:
            self._answered[key] = answered + 1
            bodies = tuple(txs[i].encoded for i in indexes)
            self.stats.txs_served += len(bodies)
        frame = bytes([ORDERING_CHANNEL, _BODIES]) + request_id.to_bytes(ID_BYTES, "big")
        self._link.send(peer, frame + encode(bodies, tuple[bytes, ...]))

    def _on_bodies(self, peer: bytes, request_id: int, body: bytes) -> None:
        future = self._pending.waiting(peer, request_id)
        if future is None:
            self.stats.malformed += 1  # unasked, or too late
            return
        future.set_result(body)

    # -- completing a received ordering -------------------------------------------------

    async def complete(self, peer: bytes, compact: CompactOrdering) -> Proposal | str:
        """The proposal `compact` stands for, its bodies taken from what this node
        holds or was sent along, the rest asked of `peer` (its proposer); or why it
        cannot be had."""
        found = self._held(compact)
        if not isinstance(found, str):
            missing = tuple(k for k, tx in enumerate(found) if tx is None)
            if missing:
                found = await self._fill(peer, compact, found, missing)
            else:
                self.stats.completed_without_asking += 1
        if isinstance(found, str):
            self.stats.fetches_failed += 1
            return found
        try:
            return compact.proposal(tuple(tx for tx in found if tx is not None))
        except DecodeError:
            self.stats.fetches_failed += 1
            return "its bodies are not the transactions its ordering names"

    def _held(self, compact: CompactOrdering) -> list[Tx | None] | str:
        """The ordering's bodies this node holds or was sent along, by position (None
        for one it lacks); a body sent along is decoded only if not held already."""
        sent = compact.sent_along()
        found: list[Tx | None] = []
        for position, identity in enumerate(compact.tx_ids):
            tx = self._lookup(identity)
            if tx is None and position in sent:
                try:
                    tx = decode_tx_bytes(sent[position])
                except DecodeError:
                    return "it sent along bytes that are not a transaction"
            found.append(tx)
        return found

    async def _fill(
        self,
        peer: bytes,
        compact: CompactOrdering,
        found: list[Tx | None],
        missing: tuple[int, ...],
    ) -> list[Tx | None] | str:
        """`found` with the `missing` bodies fetched from `peer` in place."""
        fetched = await self._fetch(peer, compact, missing)
        if isinstance(fetched, str):
            return fetched
        for position, tx in zip(missing, fetched, strict=True):
            found[position] = tx
        self.stats.txs_fetched += len(missing)
        return found

    async def _fetch(
        self, peer: bytes, compact: CompactOrdering, missing: tuple[int, ...]
    ) -> tuple[Tx, ...] | str:
        want = encode(_Want(compact.digest(), missing))

        def frame(request_id: int) -> bytes:
            prefix = bytes([ORDERING_CHANNEL, _WANT]) + request_id.to_bytes(ID_BYTES, "big")
            return prefix + want

        answer = await self._pending.ask(self._link, peer, frame, self.timeout_s)
        if isinstance(answer, str):
            return answer
        try:
            raws = decode(tuple[bytes, ...], answer)
            bodies = tuple(decode_tx_bytes(raw) for raw in raws)
        except DecodeError:
            return "it answered with bytes that are not transactions"
        if len(bodies) != len(missing):
            return f"it answered {len(bodies)} of the {len(missing)} transactions asked for"
        return bodies
