"""Block rewards that vest (paper 000): the proposer of block h is granted
`block_reward` new tokens, paid in `reward_vesting_blocks` tranches at the start of
blocks h+1, h+2, ... A misbehaving primary forfeits what has not vested yet, which
bounds what misbehaviour can earn.

Each grant is stored under its block height (`vest/<height>`), so the grants still
vesting at height H are exactly those of heights H-V .. H-1: no scan, no index.
With `block_reward = 0` nothing is ever written.
"""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._accounts import credit
from medchain.app._context import BlockContext, make_event
from medchain.app._state import State, load, save
from medchain.types import ChainParams, Event


@dataclass(frozen=True, slots=True)
class RewardGrant:
    proposer: bytes
    """Address the reward is paid to."""
    amount: int
    """The whole reward; tranches are derived from it (see `tranche`)."""


def _grant_key(height: int) -> bytes:
    return b"vest/" + height.to_bytes(8, "big")


def get_grant(state: State, height: int) -> RewardGrant | None:
    """The reward granted for the block at `height`, while any of it is still unvested."""
    return load(state, _grant_key(height), RewardGrant)


def tranche(amount: int, index: int, parts: int) -> int:
    """The `index`-th (1-based) of `parts` tranches of `amount`: equal integer shares,
    the remainder in the last, so the tranches add up to exactly `amount`."""
    if not 1 <= index <= parts:
        raise ValueError(f"tranche {index} of {parts} does not exist")
    share = amount // parts
    return amount - share * (parts - 1) if index == parts else share


def _vesting_heights(height: int, params: ChainParams) -> range:
    """Heights whose grants may still hold tranches due after block `height` started."""
    return range(max(1, height - params.reward_vesting_blocks), height + 1)


def begin_block(state: State, block: BlockContext) -> list[Event]:
    """Pay the tranches due at this block, then grant this block's proposer its reward."""
    events = release_rewards(state, block.height, block.params)
    reward = block.params.block_reward
    if reward <= 0:
        return events
    if block.params.reward_vesting_blocks <= 0:
        credit(state, block.proposer, reward)
        events.append(make_event("reward_paid", proposer=block.proposer, amount=reward))
        return events
    save(state, _grant_key(block.height), RewardGrant(block.proposer, reward))
    events.append(
        make_event("reward_granted", proposer=block.proposer, amount=reward, height=block.height)
    )
    return events


def release_rewards(state: State, height: int, params: ChainParams) -> list[Event]:
    """Credit every tranche due at `height`; a fully paid grant is deleted."""
    parts = params.reward_vesting_blocks
    events = []
    due: dict[bytes, int] = {}
    for granted in range(max(1, height - parts), height):
        grant = get_grant(state, granted)
        if grant is None:
            continue
        index = height - granted
        amount = tranche(grant.amount, index, parts)
        due[grant.proposer] = due.get(grant.proposer, 0) + amount
        if index == parts:
            state.delete(_grant_key(granted))
        events.append(
            make_event(
                "reward_vested",
                proposer=grant.proposer,
                amount=amount,
                granted_height=granted,
                tranche=index,
            )
        )
    for proposer in sorted(due):  # one credit per proposer, in a fixed order
        credit(state, proposer, due[proposer])
    return events


def _unvested(grant: RewardGrant, granted: int, height: int, parts: int) -> int:
    """What of `grant` is still unpaid once block `height` has started (or executed)."""
    paid = height - granted
    return sum(tranche(grant.amount, i, parts) for i in range(paid + 1, parts + 1))


def unvested_rewards(state: State, address: bytes, height: int, params: ChainParams) -> int:
    """Tokens granted to `address` but not yet paid, in the state after block `height`."""
    total = 0
    for granted in _vesting_heights(height, params):
        grant = get_grant(state, granted)
        if grant is not None and grant.proposer == address:
            total += _unvested(grant, granted, height, params.reward_vesting_blocks)
    return total


def forfeit_rewards(state: State, address: bytes, height: int, params: ChainParams) -> int:
    """Cancel every unpaid tranche granted to `address` (during block `height`); the
    tokens were never credited, so cancelling them burns them. Returns the amount."""
    total = 0
    for granted in _vesting_heights(height, params):
        grant = get_grant(state, granted)
        if grant is not None and grant.proposer == address:
            total += _unvested(grant, granted, height, params.reward_vesting_blocks)
            state.delete(_grant_key(granted))
    return total
