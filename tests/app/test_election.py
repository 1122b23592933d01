"""Elections for the engines: AFBFT's candidate queue each height, the DPoS committee
each epoch (recorded at the epoch start, stable through the epoch)."""

from __future__ import annotations

from medchain.app import (
    AmountArgs,
    CredentialRole,
    IssueArgs,
    Ledger,
    NoArgs,
    RegisterArgs,
    Role,
    VoteArgs,
    committee,
    epoch_start,
    primary_candidates,
)
from medchain.crypto import AccountKeys
from medchain.types import Allocation, ChainParams, Genesis

from .conftest import CHAIN_ID, World, make_org


def _world(params: ChainParams) -> tuple[World, AccountKeys, list[AccountKeys]]:
    """A world whose block 1 stakes and credentials five validator nodes (so that
    `_candidates` takes the same blocks as before credentials existed)."""
    rich = AccountKeys.generate()
    founder = make_org("st-mary")
    genesis = Genesis(
        CHAIN_ID,
        0,
        params,
        (Allocation(rich.address, 1_000_000),),
        organisations=(founder.genesis_entry(),),
    )
    world = World(Ledger(genesis), orgs=(founder,))
    nodes = [AccountKeys.generate() for _ in range(5)]
    credentials = (
        world.tx(founder.admin, "credentials.issue", IssueArgs(k.address, VALIDATOR, "node", 0), i)
        for i, k in enumerate(nodes)
    )
    receipts = world.run(world.tx(rich, "staking.stake", AmountArgs(100_000)), *credentials)
    assert all(r.ok for r in receipts)
    return world, rich, nodes


VALIDATOR = CredentialRole.VALIDATOR


def _candidates(world: World, nodes: list[AccountKeys], count: int) -> list[AccountKeys]:
    found = []
    for i, keys in enumerate(nodes[:count]):
        world.ok(keys, "registry.register", RegisterArgs(Role.VALIDATOR, f"node {i}", b""))
        world.ok(keys, "staking.declare_candidate", NoArgs())
        found.append(keys)
    return found


def test_primary_candidates_by_votes_then_address_capped_and_without_zero_votes() -> None:
    world, rich, credentialed = _world(ChainParams(primary_candidates=3))
    nodes = _candidates(world, credentialed, 5)
    for keys, votes in zip(nodes, (10, 50, 30, 30, 0), strict=True):
        if votes:
            world.ok(rich, "staking.vote", VoteArgs(keys.address, votes))
    params = world.ledger.genesis.params
    queue = primary_candidates(world.ledger.state, world.height + 1, params)
    tied = sorted((nodes[2], nodes[3]), key=lambda k: k.address)
    assert queue == (nodes[1].public_key, tied[0].public_key, tied[1].public_key)


def test_no_votes_no_candidates_and_nothing_recorded() -> None:
    world, _, credentialed = _world(ChainParams(epoch_blocks=2))
    _candidates(world, credentialed, 2)
    params = world.ledger.genesis.params
    assert primary_candidates(world.ledger.state, world.height + 1, params) == ()
    assert committee(world.ledger.state, world.height + 1, params) == ()
    assert b"dpos/committee" not in world.ledger.state.committed()


def test_epoch_start() -> None:
    params = ChainParams(epoch_blocks=20)
    assert [epoch_start(h, params) for h in (1, 2, 20, 21, 40, 41)] == [1, 1, 1, 21, 21, 41]


def test_committee_is_fixed_through_an_epoch() -> None:
    world, rich, credentialed = _world(ChainParams(committee_size=2, epoch_blocks=5))
    a, b, c = _candidates(world, credentialed, 3)  # blocks 2..7
    world.ok(rich, "staking.vote", VoteArgs(a.address, 30))  # block 8
    world.ok(rich, "staking.vote", VoteArgs(b.address, 20))  # block 9
    params = world.ledger.genesis.params

    def current() -> tuple[bytes, ...]:
        return committee(world.ledger.state, world.height + 1, params)

    assert world.height + 1 == 10  # mid-epoch 6..10: elected empty at 6, nothing recorded
    assert current() == ()
    world.run()  # block 10
    assert current() == (a.public_key, b.public_key)  # block 11 starts an epoch: elected now
    world.run()  # block 11 records it
    world.ok(rich, "staking.vote", VoteArgs(c.address, 100))  # block 12
    assert current() == (a.public_key, b.public_key)  # c's votes wait for the next epoch
    world.empty_blocks(3)  # blocks 13..15
    assert world.height + 1 == 16
    assert current() == (c.public_key, a.public_key)
    world.run()  # block 16 records the new committee
    assert current() == (c.public_key, a.public_key)
    world.ok(rich, "staking.unvote", VoteArgs(c.address, 100))
    world.ok(rich, "staking.unvote", VoteArgs(a.address, 30))
    world.ok(rich, "staking.unvote", VoteArgs(b.address, 20))
    assert current() == (c.public_key, a.public_key)
    world.empty_blocks(2)  # blocks 19, 20
    assert current() == ()  # block 21: nobody has votes
    world.run()
    assert current() == ()  # recorded empty: votes cast now wait for the next epoch
    world.ok(rich, "staking.vote", VoteArgs(b.address, 5))
    assert current() == ()
