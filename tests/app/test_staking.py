"""Staking: bonding, unbonding delay, votes and the election order."""

from __future__ import annotations

from medchain.app import (
    AmountArgs,
    NoArgs,
    Role,
    TransferArgs,
    VoteArgs,
    get_account,
    get_stake,
    ranked_candidates,
)
from medchain.crypto import AccountKeys

from .conftest import World


def _candidate(world: World) -> AccountKeys:
    keys = AccountKeys.generate()
    world.register(keys, Role.VALIDATOR, "hospital node")
    world.ok(keys, "staking.declare_candidate", NoArgs())
    return keys


def test_stake_vote_unvote_unstake_withdraw(world: World, rich: AccountKeys) -> None:
    cand = _candidate(world)
    world.ok(rich, "staking.stake", AmountArgs(500))
    assert get_account(world.ledger.state, rich.address).balance == 1_000_000 - 500
    world.ok(rich, "staking.vote", VoteArgs(cand.address, 300))
    stake = get_stake(world.ledger.state, rich.address)
    assert (stake.bonded, stake.voted, stake.free) == (500, 300, 200)
    too_much = world.call(rich, "staking.unstake", AmountArgs(300))
    assert too_much.code == "stake_error" and "unvote" in too_much.message
    world.ok(rich, "staking.unvote", VoteArgs(cand.address, 100))
    world.ok(rich, "staking.unstake", AmountArgs(300))
    early = world.call(rich, "staking.withdraw", NoArgs())
    assert early.code == "stake_error"
    for _ in range(3):
        world.ok(rich, "accounts.transfer", TransferArgs(cand.address, 1))
    world.ok(rich, "staking.withdraw", NoArgs())
    assert get_account(world.ledger.state, rich.address).balance == 1_000_000 - 500 + 300 - 3
    assert get_stake(world.ledger.state, rich.address).bonded == 200


def test_election_order_by_votes_then_address(
    world: World, rich: AccountKeys, validator: AccountKeys
) -> None:
    a, b = _candidate(world), _candidate(world)
    world.ok(rich, "staking.stake", AmountArgs(1000))
    world.ok(rich, "staking.vote", VoteArgs(a.address, 100))
    world.ok(rich, "staking.vote", VoteArgs(b.address, 400))
    ranked = ranked_candidates(world.ledger.state)
    assert [c.address for c in ranked[:2]] == [b.address, a.address]
    assert [c.votes for c in ranked] == [400, 100, 0]
    assert ranked[2].address == validator.address  # the genesis validator is a candidate


def test_vote_needs_free_stake_and_a_candidate(world: World, rich: AccountKeys) -> None:
    cand = _candidate(world)
    assert world.call(rich, "staking.vote", VoteArgs(cand.address, 1)).code == "stake_error"
    world.ok(rich, "staking.stake", AmountArgs(10))
    assert world.call(rich, "staking.vote", VoteArgs(rich.address, 1)).code == "stake_error"
    assert world.call(rich, "staking.stake", AmountArgs(0)).code == "invalid_argument"
    assert world.call(rich, "staking.stake", AmountArgs(10**12)).code == "balance_too_low"


def test_only_validators_become_candidates(world: World, patient: AccountKeys) -> None:
    assert world.call(patient, "staking.declare_candidate", NoArgs()).code == "wrong_role"
