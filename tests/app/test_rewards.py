"""Block rewards: minted for the proposer, vesting 1/6 per block over the next 6 blocks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medchain.app import Ledger, get_account, get_grant, tranche, unvested_rewards
from medchain.types import ChainParams, Genesis

from .conftest import CHAIN_ID, World

PROPOSER = b"\x0a" * 20
OTHER = b"\x0b" * 20


def _world(reward: int, vesting: int = 6) -> World:
    params = ChainParams(block_reward=reward, reward_vesting_blocks=vesting)
    return World(Ledger(Genesis(CHAIN_ID, 0, params)))


def _balance(world: World, address: bytes) -> int:
    return get_account(world.ledger.state, address).balance


@given(st.integers(min_value=0, max_value=10**30), st.integers(min_value=1, max_value=50))
def test_tranches_add_up_to_exactly_the_reward(amount: int, parts: int) -> None:
    shares = [tranche(amount, i, parts) for i in range(1, parts + 1)]
    assert sum(shares) == amount
    assert shares[:-1] == [amount // parts] * (parts - 1)
    assert 0 <= shares[-1] - amount // parts < parts


def test_tranche_out_of_range() -> None:
    with pytest.raises(ValueError):
        tranche(600, 7, 6)
    with pytest.raises(ValueError):
        tranche(600, 0, 6)


def test_reward_vests_one_sixth_per_block_with_the_remainder_last() -> None:
    world = _world(1_000)  # 1000 // 6 = 166, last tranche 170
    world.proposer = PROPOSER
    world.run()  # block 1: PROPOSER is granted 1000, nothing paid yet
    assert _balance(world, PROPOSER) == 0
    assert unvested_rewards(world.ledger.state, PROPOSER, 1, world.ledger.genesis.params) == 1_000
    world.proposer = OTHER
    paid = []
    for height in range(2, 9):
        world.run()
        paid.append(_balance(world, PROPOSER))
        left = unvested_rewards(world.ledger.state, PROPOSER, height, world.ledger.genesis.params)
        assert paid[-1] + left == 1_000
    assert paid == [166, 332, 498, 664, 830, 1_000, 1_000]
    assert get_grant(world.ledger.state, 1) is None  # fully paid grants are deleted


def test_steady_state_proposer_earns_one_reward_per_block_after_warm_up() -> None:
    world = _world(600)
    world.proposer = PROPOSER
    world.empty_blocks(20)
    # grant h pays h+1..h+6: after block 20, grants 1..14 are fully paid, 15..19 in part
    paid = 14 * 600 + sum(100 * (20 - h) for h in range(15, 20))
    assert _balance(world, PROPOSER) == paid
    params = world.ledger.genesis.params
    assert paid + unvested_rewards(world.ledger.state, PROPOSER, 20, params) == 20 * 600


def test_block_events_report_grants_and_tranches() -> None:
    world = _world(600)
    world.proposer = PROPOSER
    first = world.ledger.execute_block(world.context(), [])
    world.height += 1
    assert [e.kind for e in first.events] == ["reward_granted"]
    second = world.ledger.execute_block(world.context(), [])
    assert [e.kind for e in second.events] == ["reward_vested", "reward_granted"]
    vested = second.events[0]
    assert (vested.get("amount"), vested.get("tranche"), vested.get("granted_height")) == (
        "100",
        "1",
        "1",
    )


def test_no_vesting_pays_at_once() -> None:
    world = _world(50, vesting=0)
    world.proposer = PROPOSER
    world.run()
    assert _balance(world, PROPOSER) == 50


def test_no_reward_writes_nothing(world: World) -> None:
    before = world.ledger.state.committed()
    outcome = world.ledger.execute_block(world.context(), [])
    assert outcome.changes == {}
    assert outcome.events == ()
    assert world.ledger.state.committed() == before
