"""The consensus inbox: a message carrying a block whose transactions this node has not
verified waits while their signatures are checked in the workers, and every message
after it waits behind it, so the engine sees them in arrival order and finds the checks
done; a peer that sends forged ones pays for them."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable

from medchain.app import TransferArgs
from medchain.consensus import CompactOrdering, Kind, Ordering, Proposal, Vote, sign, wire
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import AdmissionConfig, LedgerApp
from medchain.node._admission import Admission
from medchain.node._inbox import ConsensusInbox
from medchain.node._ordering_relay import OrderingRelay
from medchain.node._verifier import Verifier
from medchain.types import (
    Allocation,
    Block,
    ChainParams,
    Genesis,
    GenesisValidator,
    Tx,
    encode,
    tx_id,
)
from tests.waiting import until

CHAIN = "medchain-inbox"
VALIDATOR = AccountKeys.generate()
RICH = AccountKeys.generate()
PEER = b"\x0a" * 32
GENESIS = Genesis(
    CHAIN,
    0,
    ChainParams(),
    (Allocation(RICH.address, 10**9),),
    (GenesisValidator(VALIDATOR.public_key, "v0"),),
)


def _block(count: int) -> Block:
    """A proposal's block, built by another node (whose checks this one has not seen)."""
    proposer = LedgerApp(GENESIS)
    for nonce in range(count):
        args = TransferArgs(b"\x05" * 20, 1)
        proposer.add_tx(signed_tx(RICH, CHAIN, nonce, "accounts.transfer", args))
    return proposer.propose(1, 10, VALIDATOR.public_key)


def _proposal(block: Block) -> bytes:
    return wire(sign(CHAIN, Proposal(1, 0, block, b"", (), VALIDATOR.public_key), VALIDATOR))


def _vote(block: Block) -> bytes:
    digest = block.certificate.block_hash
    return wire(sign(CHAIN, Vote(Kind.PREPARE, 1, 0, digest, VALIDATOR.public_key), VALIDATOR))


class _Unconnected:
    """A P2P link to nobody: these tests relay no orderings."""

    def send(self, peer: bytes, frame: bytes) -> bool:
        return False

    def connected(self) -> tuple[bytes, ...]:
        return ()


class World:
    def __init__(self, peer_burst: int = 50_000) -> None:
        self.app = LedgerApp(GENESIS)
        self.verifier = Verifier(self.app.signatures, workers=1)
        config = AdmissionConfig(peer_rate=1, peer_burst=peer_burst)
        self.peers = Admission(self.app.mempool, self.verifier, config).peers
        self.delivered: list[bytes] = []
        self.decoded: list[Proposal | None] = []
        self.coming: list[CompactOrdering] = []
        self.relay = OrderingRelay(
            _Unconnected(), self.app.mempool.get, GENESIS.params.max_block_txs
        )
        self.inbox = ConsensusInbox(
            CHAIN,
            lambda: self.app.ledger,
            self.verifier,
            self.peers,
            self._deliver,
            lambda peer: "node1",
            self.relay,
            self.coming.append,
        )

    def _deliver(self, peer: bytes, payload: bytes, decoded: Proposal | None) -> None:
        self.delivered.append(payload)
        self.decoded.append(decoded)

    async def until_delivered(self, count: int) -> None:
        await until(lambda: len(self.delivered) >= count, what=f"{count} messages delivered")


def _run(scenario: Callable[[World], Awaitable[None]], **options: int) -> None:
    async def main() -> None:
        world = World(**options)
        try:
            await scenario(world)
        finally:
            await world.inbox.close()
            await world.verifier.close()

    asyncio.run(main())


def test_a_block_not_seen_before_is_checked_off_the_loop_and_order_is_kept() -> None:
    async def scenario(world: World) -> None:
        block = _block(20)
        world.inbox.receive(PEER, _vote(block))
        assert world.delivered == [_vote(block)]  # nothing to check: straight through
        world.inbox.receive(PEER, _proposal(block))
        world.inbox.receive(PEER, _vote(block))
        assert len(world.delivered) == 1  # the proposal waits, and the vote behind it
        await world.until_delivered(3)
        assert world.delivered[1:] == [_proposal(block), _vote(block)]
        assert all(tx_id(tx) in world.app.signatures for tx in block.txs)
        assert world.inbox.checked_ahead == 1
        world.inbox.receive(PEER, _proposal(block))  # now known: straight through
        assert len(world.delivered) == 4

    _run(scenario)


def test_forged_signatures_in_a_signed_block_are_charged_to_the_peer() -> None:
    async def scenario(world: World) -> None:
        block = _block(3)
        forged = tuple(
            dataclasses.replace(tx, signature=block.txs[0].signature) for tx in block.txs[1:]
        )
        world.inbox.receive(PEER, _proposal(dataclasses.replace(block, txs=forged)))
        await world.until_delivered(1)  # the engine still gets it, and judges it
        assert world.peers.wait_s("node1") > 0
        world.inbox.receive(PEER, _proposal(_block(4)))  # more unchecked work: dropped
        world.inbox.receive(PEER, _vote(block))
        assert world.inbox.dropped == 1 and world.delivered[-1] == _vote(block)

    _run(scenario, peer_burst=1)


def test_a_message_whose_signature_fails_is_passed_on_unchecked() -> None:
    async def scenario(world: World) -> None:
        block = _block(5)
        proposal = Proposal(1, 0, block, b"", (), VALIDATOR.public_key, b"\x01" * 64)
        world.inbox.receive(PEER, wire(proposal))
        assert world.delivered == [wire(proposal)]  # the engine drops it
        assert not any(tx_id(tx) in world.app.signatures for tx in block.txs)

    _run(scenario)


def _relayed(txs: tuple[Tx, ...], signer: AccountKeys = VALIDATOR) -> tuple[bytes, Proposal]:
    """A candidate's ordering of `txs` as the relay sends it (no bodies along), and
    the proposal it stands for."""
    ordering = Ordering(b"\x01" * 32, 10, txs)
    sent = sign(CHAIN, Proposal(1, 0, ordering, b"", (), VALIDATOR.public_key), signer)
    compact = CompactOrdering.of(sent, lambda identity: False)
    return encode(compact), sent


def test_a_relayed_ordering_is_completed_from_the_mempool_and_handed_on_decoded() -> None:
    async def scenario(world: World) -> None:
        txs = _block(12).txs
        for tx in txs:
            world.app.add_tx(tx)
        frame, sent = _relayed(txs)
        compact = world.relay.on_frame(PEER, b"\x01" + frame)
        assert compact is not None
        world.inbox.receive_ordering(PEER, frame, compact)
        world.inbox.receive(PEER, _vote(_block(1)))  # behind it, in order
        await world.until_delivered(2)
        assert world.delivered == [frame, _vote(_block(1))]
        assert world.decoded == [sent, None]
        assert world.coming == [compact]

    _run(scenario)


def test_a_forged_relayed_ordering_is_dropped_before_anything_is_fetched() -> None:
    async def scenario(world: World) -> None:
        frame, _ = _relayed(_block(3).txs, signer=RICH)
        compact = world.relay.on_frame(PEER, b"\x01" + frame)
        assert compact is not None
        world.inbox.receive_ordering(PEER, frame, compact)
        world.inbox.receive(PEER, _vote(_block(1)))
        assert world.delivered == [_vote(_block(1))]
        assert world.inbox.orderings_dropped == 1 and world.coming == []

    _run(scenario)


def test_an_ordering_whose_bodies_cannot_be_had_is_dropped_and_order_is_kept() -> None:
    async def scenario(world: World) -> None:
        frame, _ = _relayed(_block(3).txs)  # the mempool holds none, the peer is away
        compact = world.relay.on_frame(PEER, b"\x01" + frame)
        assert compact is not None
        world.inbox.receive_ordering(PEER, frame, compact)
        world.inbox.receive(PEER, _vote(_block(1)))
        await world.until_delivered(1)
        assert world.delivered == [_vote(_block(1))]
        assert world.inbox.orderings_dropped == 1

    _run(scenario)


def test_an_orderings_unchecked_signatures_are_checked_before_it_is_handed_on() -> None:
    async def scenario(world: World) -> None:
        txs = _block(6).txs
        _, sent = _relayed(txs)
        compact = CompactOrdering.of(sent, lambda identity: True)  # every body along
        world.inbox.receive_ordering(PEER, encode(compact), compact)
        assert world.delivered == []  # waits for its checks
        await world.until_delivered(1)
        assert world.decoded == [sent]
        assert all(tx_id(tx) in world.app.signatures for tx in txs)
        assert world.inbox.checked_ahead == 1

    _run(scenario)
