"""LedgerApp: the ledger behind the consensus engines — pending transactions,
propose / validate / commit across replicas, persistence, elections."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from medchain.app import (
    AmountArgs,
    InvalidBlock,
    NonceGap,
    NonceReused,
    TransferArgs,
    VoteArgs,
    get_account,
    get_ban,
)
from medchain.consensus import (
    Ordering,
    Proposal,
    block_id,
    proposal_digest,
    sign,
    signed_proposal,
)
from medchain.consensus._api import ConsensusApp
from medchain.crypto import AccountKeys, sha256
from medchain.mempool import MempoolFull
from medchain.node import LedgerApp, genesis_hash
from medchain.store import ChainStore, StoreError
from medchain.types import (
    Allocation,
    Block,
    ChainParams,
    EquivocationEvidence,
    Genesis,
    GenesisValidator,
    SignedProposal,
    Tx,
    encode,
    proposal_signing_bytes,
    tx_id,
)

CHAIN = "medchain-ledger-app"
T0 = 1_700_000_000_000


class Net:
    def __init__(self, params: ChainParams | None = None, validators: int = 4) -> None:
        self.validators = [AccountKeys.generate() for _ in range(validators)]
        self.funded = AccountKeys.generate()
        self.genesis = Genesis(
            CHAIN,
            T0,
            params or ChainParams(),
            (Allocation(self.funded.address, 1_000_000),),
            tuple(GenesisValidator(k.public_key, f"v{i}") for i, k in enumerate(self.validators)),
        )

    def app(self, store: ChainStore | None = None, max_txs: int = 10_000) -> LedgerApp:
        return LedgerApp(self.genesis, store, max_txs=max_txs)


def _tx(keys: AccountKeys, nonce: int, method: str, args: object) -> Tx:
    unsigned = Tx(CHAIN, nonce, keys.public_key, 0, method, encode(args))
    return dataclasses.replace(unsigned, signature=keys.sign(unsigned.signing_bytes()))


def _transfers(funded: AccountKeys, count: int, start: int = 0) -> list[Tx]:
    return [
        _tx(funded, start + i, "accounts.transfer", TransferArgs(bytes([i + 1]) * 20, 10 + i))
        for i in range(count)
    ]


def _round(proposer: LedgerApp, others: list[LedgerApp], key: bytes) -> Block:
    """One height: `proposer` proposes, everybody validates and commits."""
    height = proposer.height + 1
    block = proposer.propose(height, T0 + 1_000 * height, key)
    for replica in [proposer, *others]:
        assert replica.validate(block) is None
        replica.commit(block)
    return block


def test_it_is_a_consensus_app() -> None:
    app: ConsensusApp = Net().app()
    assert app.last_block().height == 0


def test_round_trip_on_two_replicas_gives_identical_blocks_and_roots() -> None:
    net = Net()
    one, two = net.app(), net.app()
    assert one.last_block() == two.last_block()
    txs = _transfers(net.funded, 5)
    for tx in txs:
        assert one.add_tx(tx)  # a nonce chain 0..4 from one sender
    block = one.propose(1, T0 + 1_000, net.validators[0].public_key)
    assert block.txs == tuple(txs)
    assert block.certificate.signatures == ()
    assert block.header.proposer == net.validators[0].address
    assert one.height == 0 and one.pending() == tuple(txs)  # proposing changes nothing
    assert two.validate(block) is None
    assert one.validate(block) is None
    one.commit(block)
    two.commit(block)
    assert one.last_block() == two.last_block() == block
    assert one.ledger.state_root() == two.ledger.state_root() == block.header.state_root
    assert one.pending() == ()
    assert one.store.block_at(1) == block
    receipt = one.receipt(tx_id(txs[0]))
    assert receipt is not None and receipt.ok
    # the replica that did not propose builds the next block the same way
    more = _transfers(net.funded, 2, start=5)
    for tx in more:
        two.add_tx(tx)
    second = _round(two, [one], net.validators[1].public_key)
    assert second.txs == tuple(more)
    assert one.ledger.state.committed() == two.ledger.state.committed()
    assert get_account(one.ledger.state, bytes([1]) * 20).balance == 10 + 10


def test_propose_skips_transactions_no_longer_valid_and_caps_the_block() -> None:
    net = Net(ChainParams(max_block_txs=3))
    app = net.app()
    txs = _transfers(net.funded, 5)
    for tx in txs:
        app.add_tx(tx)
    block = app.propose(1, T0 + 1, net.validators[0].public_key)
    assert block.txs == tuple(txs[:3])
    app.commit(block)
    assert app.pending() == tuple(txs[3:])
    # a replacement for a used nonce stays pending until the next commit drops it
    stale = _tx(net.funded, 4, "accounts.transfer", TransferArgs(b"\x09" * 20, 1))
    app.add_tx(stale)
    block = app.propose(2, T0 + 2, net.validators[0].public_key)
    assert block.txs == tuple(txs[3:])
    app.commit(block)
    assert app.pending() == ()


def test_add_tx_checks_dedupes_and_bounds() -> None:
    net = Net()
    app = net.app(max_txs=2)
    first, second, third = _transfers(net.funded, 3)
    assert app.add_tx(first)
    assert not app.add_tx(first)
    with pytest.raises(NonceGap):
        app.add_tx(third)  # nonce 1 is not pending
    far = _tx(net.funded, 10**15, "accounts.transfer", TransferArgs(b"\x05" * 20, 1))
    with pytest.raises(NonceGap):
        app.add_tx(far)
    assert app.add_tx(second)
    with pytest.raises(MempoolFull, match="full"):
        app.add_tx(third)
    app.commit(app.propose(1, T0 + 1, net.validators[0].public_key))
    with pytest.raises(NonceReused):
        app.add_tx(first)
    assert app.add_tx(third)


def test_the_vrf_proof_goes_into_the_header() -> None:
    net = Net()
    one, two = net.app(), net.app()
    block = one.propose(1, T0 + 1, net.validators[0].public_key, b"\x01" * 80)
    assert block.header.vrf_proof == b"\x01" * 80
    assert two.validate(block) is None
    two.commit(block)
    assert two.last_block().header.vrf_proof == b"\x01" * 80


def test_propose_keeps_time_after_the_parent_and_checks_the_height() -> None:
    net = Net()
    app = net.app()
    block = app.propose(1, T0 - 5, net.validators[0].public_key)
    assert block.header.time_ms == T0 + 1
    with pytest.raises(ValueError, match="next height is 1"):
        app.propose(2, T0 + 10, net.validators[0].public_key)


def _with_header(block: Block, **changes: Any) -> Block:
    return dataclasses.replace(block, header=dataclasses.replace(block.header, **changes))


def test_validate_rejects_bad_blocks_and_commit_refuses_them() -> None:
    net = Net()
    proposer, replica = net.app(), net.app()
    for tx in _transfers(net.funded, 2):
        proposer.add_tx(tx)
    block = proposer.propose(1, T0 + 1_000, net.validators[0].public_key)
    parent = replica.last_block().header
    bad = {
        "state root": _with_header(block, state_root=sha256(b"wrong")),
        "prev hash": _with_header(block, prev_hash=sha256(b"elsewhere")),
        "time": _with_header(block, time_ms=parent.time_ms),
        "height": _with_header(block, height=2),
        "chain": _with_header(block, chain_id="other"),
        "tx root": dataclasses.replace(block, txs=block.txs[:1]),
        "receipt root": _with_header(block, receipt_root=sha256(b"wrong")),
        "invalid tx": dataclasses.replace(block, txs=block.txs[::-1]),
    }
    expected = {
        "state root": "state root",
        "prev hash": "does not extend",
        "time": "not after its parent",
        "height": "not the next height",
        "chain": "is for chain",
        "tx root": "tx root",
        "receipt root": "receipt root",
        "invalid tx": "",
    }
    root = replica.ledger.state_root()
    for name, wrong in bad.items():
        if name == "invalid tx":  # a reordered block also needs its tx root fixed
            wrong = _with_header(wrong, tx_root=_tx_root(wrong))
        reason = replica.validate(wrong)
        assert reason is not None and expected[name] in reason, (name, reason)
        with pytest.raises(InvalidBlock):
            replica.commit(wrong)
        assert replica.ledger.state_root() == root
        assert replica.height == 0
    assert replica.validate(block) is None
    replica.commit(block)


def _tx_root(block: Block) -> bytes:
    from medchain.node._localchain import tx_root

    return tx_root(block.txs)


def test_a_store_on_disk_reopens_where_it_left_off(tmp_path: Path) -> None:
    net = Net()
    path = tmp_path / "chain.sqlite"
    app = net.app(ChainStore(path))
    for tx in _transfers(net.funded, 3):
        app.add_tx(tx)
    _round(app, [], net.validators[0].public_key)
    root = app.ledger.state_root()
    app.store.close()
    reopened = net.app(ChainStore(path, chain_id=CHAIN, genesis_hash=genesis_hash(net.genesis)))
    assert (reopened.height, reopened.ledger.state_root()) == (1, root)
    with pytest.raises(StoreError, match="another genesis"):
        reopened.store.close()
        Net().app(ChainStore(path))


def test_a_failed_store_write_rolls_the_ledger_back_to_the_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block's state stays in memory until the store holds it: a refused write
    reloads the ledger from the store, and the block commits on a retry."""
    net = Net()
    app, twin = net.app(ChainStore(tmp_path / "chain.sqlite")), net.app()
    for tx in _transfers(net.funded, 3):
        app.add_tx(tx)
    block = app.propose(1, T0 + 1_000, net.validators[0].public_key)
    before = app.ledger.state_root()

    def refuse(*_: object) -> None:
        raise StoreError("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(ChainStore, "commit_block", refuse)
        with pytest.raises(StoreError, match="disk full"):
            app.commit(block)
    assert app.height == 0 and app.store.latest_height() == 0
    assert app.ledger.state_root() == before
    assert app.ledger.state.unpersisted().changes == {}
    assert len(app.pending()) == 3  # still pending: nothing was committed
    for replica in (app, twin):
        replica.commit(block)
    assert app.ledger.state_root() == twin.ledger.state_root() == block.header.state_root
    assert app.store.load_state() == twin.ledger.state.committed()


def test_elections_fall_back_to_the_genesis_validators() -> None:
    net = Net(ChainParams(primary_candidates=3, committee_size=2), validators=5)
    app = net.app()
    keys = [k.public_key for k in net.validators]
    assert app.validators() == tuple(keys)
    assert app.primary_candidates() == tuple(keys[:3])
    assert app.committee() == tuple(keys[:2])
    # once votes are cast, the voted candidates come first; genesis validators fill
    # the seats left, so one voted candidate going down cannot stop the chain
    app.add_tx(_tx(net.funded, 0, "staking.stake", AmountArgs(1_000)))
    app.add_tx(_tx(net.funded, 1, "staking.vote", VoteArgs(net.validators[4].address, 10)))
    app.add_tx(_tx(net.funded, 2, "staking.vote", VoteArgs(net.validators[2].address, 20)))
    _round(app, [], keys[0])
    assert app.primary_candidates() == (keys[2], keys[4], keys[0])
    assert app.committee() == tuple(keys[:2])  # the committee waits for the next epoch


def test_block_rewards_and_evidence_through_consensus() -> None:
    net = Net(ChainParams(block_reward=60))
    one, two = net.app(), net.app()
    v0, v1 = net.validators[:2]
    for tx in (
        _tx(net.funded, 0, "staking.stake", AmountArgs(1_000)),
        _tx(net.funded, 1, "staking.vote", VoteArgs(v0.address, 1_000)),
    ):
        one.add_tx(tx)
    _round(one, [two], v0.public_key)
    for _ in range(3):
        _round(one, [two], v0.public_key)
    assert get_account(one.ledger.state, v0.address).balance == 10 + 20 + 30
    assert one.primary_candidates()[0] == v0.public_key

    def proposal(block: bytes) -> SignedProposal:
        digest = sha256(block)
        signature = v0.sign(proposal_signing_bytes(CHAIN, 4, 0, digest))
        return SignedProposal(4, 0, digest, v0.public_key, signature)

    evidence = EquivocationEvidence(proposal(b"x"), proposal(b"y"))
    report = two.submit_evidence(v1, evidence)
    block = _round(two, [one], v1.public_key)
    assert block.txs == (report,)
    receipt = one.receipt(tx_id(report))
    assert receipt is not None and receipt.ok, receipt
    assert get_ban(one.ledger.state, v0.address) == block.height + 20
    assert v0.public_key not in one.primary_candidates()
    assert one.ledger.state_root() == two.ledger.state_root()
    for _ in range(8):
        _round(one, [two], v1.public_key)
    # block 5 paid one more tranche of each of v0's 4 grants, then v0 forfeited the rest
    assert get_account(one.ledger.state, v0.address).balance == 60 + 40
    assert two.ledger.state.committed() == one.ledger.state.committed()


# -- AFBFT: orderings, built by every validator ---------------------------------------


def _ordering(app: LedgerApp, txs: tuple[Tx, ...], time_ms: int = T0 + 1_000) -> Ordering:
    return Ordering(block_id(app.last_block()), time_ms, txs)


def test_every_validator_builds_the_same_block_from_an_ordering() -> None:
    net = Net()
    proposer, other, empty = net.app(), net.app(), net.app()
    txs = _transfers(net.funded, 5)
    for tx in txs:
        proposer.add_tx(tx)
    for tx in txs[:2]:  # another mempool, holding fewer: no matter
        other.add_tx(tx)
    ordering = _ordering(proposer, proposer.order(1))
    assert ordering.txs == tuple(txs) and proposer.height == 0  # ordering executes nothing
    key, draw = net.validators[0].public_key, b"\x05" * 80
    built = [app.build(1, ordering, key, draw) for app in (proposer, other, empty)]
    assert all(isinstance(b, Block) for b in built)
    assert len({block_id(b) for b in built if isinstance(b, Block)}) == 1
    block = built[0]
    assert isinstance(block, Block)
    assert block.txs == tuple(txs) and block.header.vrf_proof == draw
    assert block.header.proposer == net.validators[0].address
    assert block.header.time_ms == ordering.time_ms
    # the same block its proposer would have built and executed itself
    assert block == proposer.propose(1, ordering.time_ms, key, draw)
    for app in (proposer, other, empty):
        assert app.validate(block) is None
        app.commit(block)
    assert proposer.ledger.state_root() == other.ledger.state_root() == empty.ledger.state_root()
    assert proposer.pending() == () and other.pending() == ()


def test_transactions_invalid_where_they_stand_are_left_out_alike() -> None:
    net = Net()
    apps = [net.app() for _ in range(3)]
    good = _transfers(net.funded, 3)
    reused = _tx(net.funded, 1, "accounts.transfer", TransferArgs(b"\x09" * 20, 1))
    gap = _tx(net.funded, 7, "accounts.transfer", TransferArgs(b"\x09" * 20, 1))
    forged = dataclasses.replace(
        _tx(net.funded, 3, "accounts.transfer", TransferArgs(b"\x09" * 20, 1)),
        signature=b"\x00" * 64,
    )
    broke = AccountKeys.generate()  # no funds: its transfer fails where it stands
    unfunded = _tx(broke, 0, "accounts.transfer", TransferArgs(b"\x09" * 20, 1))
    ordering = _ordering(apps[0], (good[0], good[1], reused, gap, forged, unfunded, good[2]))
    key = net.validators[1].public_key
    built = [app.build(1, ordering, key, b"") for app in apps]
    assert all(isinstance(b, Block) for b in built)
    assert len({block_id(b) for b in built if isinstance(b, Block)}) == 1
    block = built[0]
    assert isinstance(block, Block)
    assert reused not in block.txs and gap not in block.txs and forged not in block.txs
    assert [tx for tx in block.txs if tx in good] == good
    for app in apps:
        app.commit(block)
    assert len({app.ledger.state_root() for app in apps}) == 1


@pytest.mark.parametrize("fault", ["parent", "time", "height", "too many"])
def test_an_ordering_that_cannot_be_the_next_block_is_refused(fault: str) -> None:
    net = Net(ChainParams(max_block_txs=2))
    app = net.app()
    ordering, height = _ordering(app, tuple(_transfers(net.funded, 2))), 1
    if fault == "parent":
        ordering = dataclasses.replace(ordering, parent=b"\x09" * 32)
    elif fault == "time":
        ordering = dataclasses.replace(ordering, time_ms=app.last_block().header.time_ms)
    elif fault == "height":
        height = 2
    else:
        ordering = _ordering(app, tuple(_transfers(net.funded, 3)))
    reason = app.build(height, ordering, net.validators[0].public_key, b"")
    assert isinstance(reason, str) and reason
    assert app.height == 0


def test_the_order_leaves_out_what_the_block_could_not_take() -> None:
    net = Net(ChainParams(max_block_txs=3))
    app = net.app()
    txs = _transfers(net.funded, 5)
    for tx in txs:
        app.add_tx(tx)
    assert app.order(1) == tuple(txs[:3])
    with pytest.raises(ValueError, match="next height"):
        app.order(2)


def test_evidence_of_two_signed_orderings_is_punished_on_chain() -> None:
    net = Net()
    one, two = net.app(), net.app()
    v0, v1 = net.validators[:2]
    _round(one, [two], v0.public_key)
    first = _ordering(one, tuple(_transfers(net.funded, 1)), T0 + 5_000)
    second = dataclasses.replace(first, time_ms=first.time_ms + 1)
    signed = [
        sign(CHAIN, Proposal(2, 0, o, b"\x05" * 80, (), v0.public_key), v0) for o in (first, second)
    ]
    evidence = EquivocationEvidence(signed_proposal(signed[0]), signed_proposal(signed[1]))
    assert evidence.first.block_hash == proposal_digest(signed[0])
    report = two.submit_evidence(v1, evidence)
    block = _round(two, [one], v1.public_key)
    assert block.txs == (report,)
    receipt = one.receipt(tx_id(report))
    assert receipt is not None and receipt.ok, receipt
    assert get_ban(one.ledger.state, v0.address) == block.height + 20
