"""Elections the consensus engines read: AFBFT's primary-candidate queue and the
DPoS producer committee, both decided by the stake-weighted votes of the staking
contract.

A candidate's weight at a height is the votes allocated to it minus those of
voters banned at that height; banned candidates and candidates with no weight
are not elected; ties go to the lower address. Candidates are returned as their
Ed25519 public keys (from the registry), best first.

- `primary_candidates` is re-elected at every height from the current state.
- `committee` is elected once per epoch of `epoch_blocks` blocks from the state
  at the epoch's first height (before that block's transactions) and recorded in
  the state while that block executes, so it stays fixed through the epoch (a ban
  during the epoch takes effect at the next one). Nothing is recorded while no
  committee has ever been elected.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medchain.app._context import BlockContext, make_event
from medchain.app._penalties import banned_accounts
from medchain.app._registry import get_identity
from medchain.app._staking import Candidate, get_stake, ranked_candidates
from medchain.app._state import State, load, save
from medchain.types import ChainParams, Event


@dataclass(frozen=True, slots=True)
class CommitteeSnapshot:
    epoch_start: int
    """First height of the epoch this committee serves."""
    members: tuple[bytes, ...]
    """Ed25519 public keys, by votes (most first)."""


_COMMITTEE_KEY = b"dpos/committee"


def election_ranking(state: State, height: int) -> list[Candidate]:
    """Candidates that can be elected at `height` with their effective votes, best first."""
    banned = set(banned_accounts(state, height))
    discount: dict[bytes, int] = {}
    for voter in sorted(banned):
        for allocation in get_stake(state, voter).votes:
            discount[allocation.candidate] = (
                discount.get(allocation.candidate, 0) + allocation.amount
            )
    eligible = [
        replace(c, votes=c.votes - discount.get(c.address, 0))
        for c in ranked_candidates(state)
        if c.address not in banned
    ]
    return sorted((c for c in eligible if c.votes > 0), key=lambda c: (-c.votes, c.address))


def _elect(state: State, height: int, seats: int) -> tuple[bytes, ...]:
    keys: list[bytes] = []
    for candidate in election_ranking(state, height):
        if len(keys) >= seats:
            break
        identity = get_identity(state, candidate.address)
        if identity is not None:
            keys.append(identity.public_key)
    return tuple(keys)


def primary_candidates(state: State, height: int, params: ChainParams) -> tuple[bytes, ...]:
    """AFBFT's candidate queue for `height`: the top `primary_candidates` by votes."""
    return _elect(state, height, params.primary_candidates)


def epoch_start(height: int, params: ChainParams) -> int:
    """First height of the epoch that `height` (>= 1) belongs to."""
    length = max(1, params.epoch_blocks)
    return (height - 1) // length * length + 1


def committee(state: State, height: int, params: ChainParams) -> tuple[bytes, ...]:
    """The DPoS committee (top `committee_size` by votes) serving `height`, the next
    height to execute on `state`. Empty when no candidate had votes at the epoch start."""
    start = epoch_start(height, params)
    if height == start:
        return _elect(state, height, params.committee_size)
    snapshot = load(state, _COMMITTEE_KEY, CommitteeSnapshot)
    if snapshot is None:
        return ()  # no committee was ever elected, so none was at this epoch's start
    if snapshot.epoch_start == start:
        return snapshot.members
    return _elect(state, height, params.committee_size)  # a later epoch: today's election


def record_committee(state: State, block: BlockContext) -> list[Event]:
    """At an epoch's first block, record the committee elected for the epoch."""
    if block.height != epoch_start(block.height, block.params):
        return []
    members = _elect(state, block.height, block.params.committee_size)
    if not members and load(state, _COMMITTEE_KEY, CommitteeSnapshot) is None:
        return []
    save(state, _COMMITTEE_KEY, CommitteeSnapshot(block.height, members))
    return [
        make_event(
            "committee_elected",
            epoch_start=block.height,
            members=",".join(key.hex() for key in members),
        )
    ]
