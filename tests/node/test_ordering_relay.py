"""The ordering relay: an AFBFT ordering travels as its transactions' ids, with the
bodies its proposer expects peers to lack; the receiver takes the rest from what it
holds and asks the proposer for what it still lacks, and takes only bodies that hash
to the ids the proposer signed."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

import pytest

from medchain.app import TransferArgs
from medchain.consensus import (
    CompactOrdering,
    Ordering,
    Proposal,
    sign,
    unwire_compact,
    wire,
)
from medchain.crypto import AccountKeys, signed_tx
from medchain.node._ordering_relay import (
    ANSWERS_PER_PEER,
    ORDERING_CHANNEL,
    OrderingRelay,
)
from medchain.types import DecodeError, Tx, encode, tx_id

CHAIN = "medchain-relay"
PROPOSER = AccountKeys.generate()
SENDER = AccountKeys.generate()
RECEIVER = b"\x0b" * 32
CANDIDATE = b"\x0c" * 32
MAX_TXS = 100


def _txs(count: int) -> tuple[Tx, ...]:
    args = TransferArgs(b"\x05" * 20, 1)
    return tuple(
        signed_tx(SENDER, CHAIN, nonce, "accounts.transfer", args) for nonce in range(count)
    )


def _ordering(txs: tuple[Tx, ...]) -> Proposal:
    proposal = Proposal(1, 0, Ordering(b"\x01" * 32, 7, txs), b"", (), PROPOSER.public_key)
    return sign(CHAIN, proposal, PROPOSER)


class _Link:
    """Two relays on loopback: a frame sent is handed to the other side at once
    (unless `drop`), as the P2P transport hands a frame to `Node._on_frame`."""

    def __init__(self) -> None:
        self.ends: dict[bytes, OrderingRelay] = {}
        self.frames = 0
        self.drop = False

    def connect(self, key: bytes, relay: OrderingRelay) -> None:
        self.ends[key] = relay

    def end(self, me: bytes) -> _End:
        return _End(self, me)


class _End:
    def __init__(self, link: _Link, me: bytes) -> None:
        self.link, self.me = link, me

    def send(self, peer: bytes, frame: bytes) -> bool:
        self.link.frames += 1
        if not self.link.drop:
            assert frame[0] == ORDERING_CHANNEL
            loop = asyncio.get_running_loop()
            loop.call_soon(self.link.ends[peer].on_frame, self.me, frame[1:])
        return True

    def connected(self) -> tuple[bytes, ...]:
        return tuple(self.link.ends)


class Pair:
    """A candidate's relay and a receiver's, the receiver holding `held` bodies."""

    def __init__(self, held: tuple[Tx, ...] = ()) -> None:
        self.link = _Link()
        self.held = {tx_id(tx): tx for tx in held}
        self.candidate = OrderingRelay(self.link.end(CANDIDATE), lambda i: None, MAX_TXS)
        self.receiver = OrderingRelay(
            self.link.end(RECEIVER), self.held.get, MAX_TXS, timeout_s=0.5
        )
        self.link.connect(CANDIDATE, self.candidate)
        self.link.connect(RECEIVER, self.receiver)

    def send(
        self, proposal: Proposal, send_body: Callable[[bytes], bool] = lambda i: False
    ) -> CompactOrdering:
        """The candidate's frame for `proposal`, as the receiver decodes it."""
        frame = self.candidate.frame(proposal, send_body)
        compact = self.receiver.on_frame(CANDIDATE, frame[1:])
        assert compact is not None
        return compact


def _run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(scenario())  # type: ignore[arg-type]


def test_an_ordering_travels_as_ids_and_is_completed_from_what_the_receiver_holds() -> None:
    async def scenario() -> None:
        txs = _txs(60)
        sent = _ordering(txs)
        pair = Pair(held=txs)
        frame = pair.candidate.frame(sent, lambda i: False)
        assert len(frame) * 4 < len(wire(sent))  # ids, not bodies
        compact = pair.receiver.on_frame(CANDIDATE, frame[1:])
        assert compact is not None and compact.authentic(CHAIN)
        assert await pair.receiver.complete(CANDIDATE, compact) == sent
        assert pair.link.frames == 0  # nothing asked
        assert pair.receiver.stats.completed_without_asking == 1

    _run(scenario)


def test_only_the_bodies_the_receiver_lacks_are_asked_of_the_proposer() -> None:
    async def scenario() -> None:
        txs = _txs(40)
        sent = _ordering(txs)
        pair = Pair(held=txs[::2])
        compact = pair.send(sent)
        assert await pair.receiver.complete(CANDIDATE, compact) == sent
        assert pair.receiver.stats.txs_fetched == 20
        assert pair.candidate.stats.txs_served == 20
        assert pair.link.frames == 2  # one ask, one answer

    _run(scenario)


def test_bodies_the_proposer_expects_peers_to_lack_travel_with_the_ordering() -> None:
    async def scenario() -> None:
        txs = _txs(30)
        fresh = {tx_id(tx) for tx in txs[20:]}
        sent = _ordering(txs)
        pair = Pair(held=txs[:20])
        compact = pair.send(sent, fresh.__contains__)
        assert compact.sent == tuple(range(20, 30))
        assert await pair.receiver.complete(CANDIDATE, compact) == sent
        assert pair.link.frames == 0
        assert pair.candidate.stats.txs_sent_along == 10

    _run(scenario)


def test_a_body_sent_along_that_the_receiver_holds_is_not_decoded_again() -> None:
    async def scenario() -> None:
        txs = _txs(8)
        held = _txs(8)  # equal transactions, other objects: what gossip decoded
        pair = Pair(held=held)
        compact = pair.send(_ordering(txs), lambda identity: True)
        completed = await pair.receiver.complete(CANDIDATE, compact)
        assert isinstance(completed, Proposal) and isinstance(completed.block, Ordering)
        assert all(a is b for a, b in zip(completed.block.txs, held, strict=True))

    _run(scenario)


def test_bodies_other_than_the_signed_ones_are_refused() -> None:
    async def scenario() -> None:
        txs = _txs(10)
        sent = _ordering(txs)
        pair = Pair(held=txs[:5])
        compact = pair.send(sent)
        (kept,) = pair.candidate._own
        others = _txs(12)[2:]  # other transactions at the same positions
        pair.candidate._own[kept] = others
        why = await pair.receiver.complete(CANDIDATE, compact)
        assert isinstance(why, str) and "not the transactions its ordering names" in why
        assert pair.receiver.stats.fetches_failed == 1

    _run(scenario)


def test_a_body_sent_along_that_is_not_the_named_one_fails_the_ordering() -> None:
    txs = _txs(4)
    compact = CompactOrdering.of(_ordering(txs), lambda i: True)
    others = _txs(5)[1:]
    forged = dataclasses.replace(compact, bodies=tuple(tx.encoded for tx in others))
    with pytest.raises(DecodeError, match="not the ones the ordering names"):
        forged.proposal(others)
    pair = Pair()

    async def scenario() -> None:
        why = await pair.receiver.complete(CANDIDATE, forged)
        assert why == "its bodies are not the transactions its ordering names"

    _run(scenario)


def test_the_proposer_answers_only_orderings_it_made_and_only_so_often() -> None:
    async def scenario() -> None:
        txs = _txs(6)
        pair = Pair()
        compact = pair.send(_ordering(txs))
        for _ in range(ANSWERS_PER_PEER):
            assert await pair.receiver.complete(CANDIDATE, compact) == _ordering(txs)
        why = await pair.receiver.complete(CANDIDATE, compact)
        assert why == "it answered 0 of the 6 transactions asked for"
        stranger = CompactOrdering.of(_ordering(_txs(3)), lambda i: False)
        why = await pair.receiver.complete(CANDIDATE, stranger)
        assert why == "it answered 0 of the 3 transactions asked for"
        assert pair.candidate.stats.requests_refused == 2

    _run(scenario)


def test_a_proposer_that_does_not_answer_loses_its_ordering() -> None:
    async def scenario() -> None:
        pair = Pair()
        compact = pair.send(_ordering(_txs(3)))
        pair.link.drop = True
        why = await pair.receiver.complete(CANDIDATE, compact)
        assert isinstance(why, str) and "gave no answer" in why

    _run(scenario)


def test_a_relayed_ordering_is_held_to_its_bounds_and_its_signature() -> None:
    txs = _txs(5)
    compact = CompactOrdering.of(_ordering(txs), lambda i: False)
    with pytest.raises(DecodeError, match="at most 4"):
        unwire_compact(encode(compact), max_txs=4)
    bad_ids = dataclasses.replace(compact, tx_ids=(b"\x00" * 31,) * 5)
    with pytest.raises(DecodeError, match="32 bytes"):
        unwire_compact(encode(bad_ids), MAX_TXS)
    misplaced = dataclasses.replace(compact, sent=(9,), bodies=(txs[0].encoded,))
    with pytest.raises(DecodeError, match="distinct positions"):
        unwire_compact(encode(misplaced), MAX_TXS)
    assert unwire_compact(encode(compact), MAX_TXS).authentic(CHAIN)
    other_ids = dataclasses.replace(compact, tx_ids=compact.tx_ids[::-1])
    assert not other_ids.authentic(CHAIN)  # the signature is over the ids, in order


def test_malformed_frames_are_counted_and_dropped() -> None:
    pair = Pair()
    for frame in (b"", b"\x09", b"\x01garbage", b"\x02\x00\x00\x00\x01garbage", b"\x03\x00"):
        assert pair.receiver.on_frame(CANDIDATE, frame) is None
    assert pair.receiver.stats.malformed == 5
