"""Staking contract: the state the consensus engines elect, slash and reward from.

Tokens move from an account's balance into its bonded stake; bonded stake that
is not voting can be unstaked, and becomes spendable after an unbonding delay
(so a validator cannot escape a slash by withdrawing at once). Voters allocate
bonded stake to declared candidates; a candidate's weight is the sum of the stake
voted for it. Every list here is kept sorted so elections are deterministic.

Each candidate also keeps the sorted list of accounts voting for it, so a
penalty can find the voters of a misbehaving primary (`slash` and
`medchain.app._penalties`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medchain.app._accounts import credit, debit
from medchain.app._context import Call, Methods
from medchain.app._errors import InvalidArgument, StakeError
from medchain.app._registry import Role, require_identity
from medchain.app._state import State, load, save
from medchain.crypto import format_address


@dataclass(frozen=True, slots=True)
class Unbonding:
    amount: int
    release_height: int


@dataclass(frozen=True, slots=True)
class VoteAllocation:
    candidate: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class StakeAccount:
    bonded: int = 0
    unbonding: tuple[Unbonding, ...] = ()
    votes: tuple[VoteAllocation, ...] = ()
    """Sorted by candidate address."""

    @property
    def voted(self) -> int:
        return sum(v.amount for v in self.votes)

    @property
    def free(self) -> int:
        """Bonded stake not allocated to any candidate."""
        return self.bonded - self.voted


@dataclass(frozen=True, slots=True)
class Candidate:
    address: bytes
    votes: int
    declared_height: int


@dataclass(frozen=True, slots=True)
class CandidateSet:
    addresses: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class VoterSet:
    addresses: tuple[bytes, ...]
    """Sorted addresses with a non-zero vote allocation for one candidate."""


@dataclass(frozen=True, slots=True)
class Slash:
    """What one penalty burned from one account's stake."""

    address: bytes
    bonded: int
    """Burned from bonded stake (its free part and every vote allocation)."""
    unbonding: int
    """Burned from stake still unbonding (unstaking does not escape a penalty)."""

    @property
    def total(self) -> int:
        return self.bonded + self.unbonding


@dataclass(frozen=True, slots=True)
class AmountArgs:
    amount: int


@dataclass(frozen=True, slots=True)
class NoArgs:
    pass


@dataclass(frozen=True, slots=True)
class VoteArgs:
    candidate: bytes
    amount: int


_CANDIDATES_KEY = b"cands"


def _stake_key(address: bytes) -> bytes:
    return b"stake/" + address


def _candidate_key(address: bytes) -> bytes:
    return b"cand/" + address


def _voters_key(candidate: bytes) -> bytes:
    return b"voters/" + candidate


def voters_of(state: State, candidate: bytes) -> tuple[bytes, ...]:
    """Accounts with votes allocated to `candidate`, sorted by address."""
    found = load(state, _voters_key(candidate), VoterSet)
    return () if found is None else found.addresses


def _set_voter(state: State, candidate: bytes, voter: bytes, voting: bool) -> None:
    current = set(voters_of(state, candidate))
    if (voter in current) == voting:
        return
    if voting:
        current.add(voter)
    else:
        current.discard(voter)
    if current:
        save(state, _voters_key(candidate), VoterSet(tuple(sorted(current))))
    else:
        state.delete(_voters_key(candidate))


def get_stake(state: State, address: bytes) -> StakeAccount:
    return load(state, _stake_key(address), StakeAccount) or StakeAccount()


def _put_stake(state: State, address: bytes, stake: StakeAccount) -> None:
    if stake == StakeAccount():
        state.delete(_stake_key(address))
    else:
        save(state, _stake_key(address), stake)


def get_candidate(state: State, address: bytes) -> Candidate | None:
    return load(state, _candidate_key(address), Candidate)


def ranked_candidates(state: State) -> list[Candidate]:
    """Candidates by votes (most first), ties broken by address: the election order."""
    found = []
    for address in (load(state, _CANDIDATES_KEY, CandidateSet) or CandidateSet(())).addresses:
        candidate = get_candidate(state, address)
        assert candidate is not None
        found.append(candidate)
    return sorted(found, key=lambda c: (-c.votes, c.address))


def _positive(amount: int) -> None:
    if amount <= 0:
        raise InvalidArgument("the amount must be a positive number of tokens")


def stake(state: State, call: Call, args: AmountArgs) -> None:
    _positive(args.amount)
    debit(state, call.sender, args.amount, "staking")
    current = get_stake(state, call.sender)
    _put_stake(state, call.sender, replace(current, bonded=current.bonded + args.amount))
    call.emit("staked", address=call.sender, amount=args.amount)


def unstake(state: State, call: Call, args: AmountArgs) -> None:
    _positive(args.amount)
    current = get_stake(state, call.sender)
    if args.amount > current.free:
        raise StakeError(
            f"only {current.free} of {current.bonded} bonded tokens are free of votes; "
            "withdraw votes with `staking.unvote` first"
        )
    release = call.block.height + call.block.params.unbonding_blocks
    _put_stake(
        state,
        call.sender,
        replace(
            current,
            bonded=current.bonded - args.amount,
            unbonding=(*current.unbonding, Unbonding(args.amount, release)),
        ),
    )
    call.emit("unstaked", address=call.sender, amount=args.amount, release_height=release)


def withdraw(state: State, call: Call, args: NoArgs) -> None:
    current = get_stake(state, call.sender)
    height = call.block.height
    ready = sum(u.amount for u in current.unbonding if u.release_height <= height)
    if ready == 0:
        pending = ", ".join(f"{u.amount} at height {u.release_height}" for u in current.unbonding)
        raise StakeError(
            "nothing has finished unbonding yet" + (f" (pending: {pending})" if pending else "")
        )
    remaining = tuple(u for u in current.unbonding if u.release_height > height)
    _put_stake(state, call.sender, replace(current, unbonding=remaining))
    credit(state, call.sender, ready)
    call.emit("withdrawn", address=call.sender, amount=ready)


def add_candidate(state: State, address: bytes, height: int) -> None:
    save(state, _candidate_key(address), Candidate(address, 0, height))
    current = load(state, _CANDIDATES_KEY, CandidateSet) or CandidateSet(())
    save(state, _CANDIDATES_KEY, CandidateSet(tuple(sorted((*current.addresses, address)))))


def declare_candidate(state: State, call: Call, args: NoArgs) -> None:
    require_identity(state, call.sender, Role.VALIDATOR)
    if get_candidate(state, call.sender) is not None:
        raise StakeError(f"{format_address(call.sender)} is already a candidate")
    add_candidate(state, call.sender, call.block.height)
    call.emit("candidate_declared", address=call.sender)


def _set_allocation(stake_account: StakeAccount, candidate: bytes, amount: int) -> StakeAccount:
    votes = {v.candidate: v.amount for v in stake_account.votes}
    if amount:
        votes[candidate] = amount
    else:
        votes.pop(candidate, None)
    return replace(stake_account, votes=tuple(VoteAllocation(c, votes[c]) for c in sorted(votes)))


def vote(state: State, call: Call, args: VoteArgs) -> None:
    _positive(args.amount)
    candidate = get_candidate(state, args.candidate)
    if candidate is None:
        raise StakeError(f"{format_address(args.candidate)} is not a declared candidate")
    current = get_stake(state, call.sender)
    if args.amount > current.free:
        raise StakeError(
            f"only {current.free} bonded tokens are free to vote; stake more with `staking.stake`"
        )
    already = next((v.amount for v in current.votes if v.candidate == args.candidate), 0)
    updated = _set_allocation(current, args.candidate, already + args.amount)
    if len(updated.votes) > call.block.params.max_votes_per_voter:
        raise StakeError(
            f"a voter may back at most {call.block.params.max_votes_per_voter} candidates"
        )
    _put_stake(state, call.sender, updated)
    save(
        state,
        _candidate_key(args.candidate),
        replace(candidate, votes=candidate.votes + args.amount),
    )
    _set_voter(state, args.candidate, call.sender, True)
    call.emit("voted", voter=call.sender, candidate=args.candidate, amount=args.amount)


def unvote(state: State, call: Call, args: VoteArgs) -> None:
    _positive(args.amount)
    current = get_stake(state, call.sender)
    already = next((v.amount for v in current.votes if v.candidate == args.candidate), 0)
    if args.amount > already:
        raise StakeError(
            f"you have {already} tokens voting for {format_address(args.candidate)}, "
            f"cannot withdraw {args.amount}"
        )
    _put_stake(state, call.sender, _set_allocation(current, args.candidate, already - args.amount))
    if already == args.amount:
        _set_voter(state, args.candidate, call.sender, False)
    candidate = get_candidate(state, args.candidate)
    assert candidate is not None
    save(
        state,
        _candidate_key(args.candidate),
        replace(candidate, votes=candidate.votes - args.amount),
    )
    call.emit("unvoted", voter=call.sender, candidate=args.candidate, amount=args.amount)


def slash(state: State, address: bytes, bps: int) -> Slash:
    """Burn `bps` basis points of each part of `address`'s stake: its free bonded
    stake, every vote allocation (the candidates' totals drop with them, so they stay
    the sum of their voters' allocations) and every unbonding entry.

    Each part is rounded down on its own, so the account never loses more than
    `bps` of its whole stake and never holds more votes than bonded stake."""
    bps = min(max(bps, 0), 10_000)

    def cut(amount: int) -> int:
        return amount * bps // 10_000

    current = get_stake(state, address)
    votes: list[VoteAllocation] = []
    for allocation in current.votes:
        burned = cut(allocation.amount)
        if burned:
            candidate = get_candidate(state, allocation.candidate)
            assert candidate is not None, "a vote allocation names a missing candidate"
            save(
                state,
                _candidate_key(allocation.candidate),
                replace(candidate, votes=candidate.votes - burned),
            )
        if allocation.amount > burned:
            votes.append(VoteAllocation(allocation.candidate, allocation.amount - burned))
        else:
            _set_voter(state, allocation.candidate, address, False)
    free = current.free
    bonded = sum(v.amount for v in votes) + free - cut(free)
    unbonding = tuple(
        Unbonding(u.amount - cut(u.amount), u.release_height)
        for u in current.unbonding
        if u.amount > cut(u.amount)
    )
    burned_unbonding = sum(u.amount for u in current.unbonding) - sum(u.amount for u in unbonding)
    _put_stake(state, address, StakeAccount(bonded, unbonding, tuple(votes)))
    return Slash(address, current.bonded - bonded, burned_unbonding)


METHODS: Methods = {
    "staking.stake": (AmountArgs, stake),
    "staking.unstake": (AmountArgs, unstake),
    "staking.withdraw": (NoArgs, withdraw),
    "staking.declare_candidate": (NoArgs, declare_candidate),
    "staking.vote": (VoteArgs, vote),
    "staking.unvote": (VoteArgs, unvote),
}
