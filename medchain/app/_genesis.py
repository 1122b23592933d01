"""The state a chain starts from: a new chain's, or a hard fork's (paper 003).

A fork starts from its parent's whole state at an anchored height, checked against
the anchored state root, and hands consensus to a new validator set: the parent's
validators and candidates left out of it lose their candidacy (their voters' stake
is freed) and are banned for good, so the majority that attacked the parent can
never be elected on the fork. The fork restarts at height 0, so state that counts
in parent heights (unbonding, bans, vesting rewards) is moved to the fork's heights.
"""

from __future__ import annotations

from dataclasses import replace
from itertools import pairwise

from medchain.app._accounts import credit
from medchain.app._errors import ContractError
from medchain.app._orgs import OrganisationSpec, OrgKind, admit, get_organisation
from medchain.app._penalties import (
    _BAN_INDEX_KEY,
    Ban,
    BanIndex,
    _ban,
    _ban_key,
    put_validator_set,
    validator_set,
)
from medchain.app._registry import Identity, Role, get_identity, identity_key
from medchain.app._rewards import forfeit_rewards, get_grant, unvested_rewards
from medchain.app._staking import (
    _CANDIDATES_KEY,
    CandidateSet,
    StakeAccount,
    _candidate_key,
    _put_stake,
    _set_allocation,
    _voters_key,
    add_candidate,
    get_candidate,
    get_stake,
    voters_of,
)
from medchain.app._state import State, load, save
from medchain.crypto import address_from_public_key, format_address
from medchain.types import (
    ForkOrigin,
    Genesis,
    GenesisError,
    GenesisOrganisation,
    GenesisValidator,
    decode,
)

BANNED_FOREVER = 2**63 - 1
"""The ban a fork gives the parent validators it leaves out: past any height."""


def genesis_state(genesis: Genesis) -> State:
    """Allocations become balances; genesis validators become registered candidates
    and, in genesis order, the validator set that evidence is checked against. A
    fork's genesis starts from the parent's state it carries (see the module doc)."""
    origin = genesis.origin
    if origin is not None or genesis.state:
        return _fork_state(genesis, origin)
    check_organisations(genesis)
    state = State()
    state.begin_block()
    for allocation in sorted(genesis.allocations, key=lambda a: a.address):
        credit(state, allocation.address, allocation.amount)
    for organisation in genesis.organisations:
        _found(state, organisation)
    for validator in genesis.validators:
        _register_validator(state, validator)
        add_candidate(state, address_from_public_key(validator.public_key), 0)
    put_validator_set(state, tuple(v.public_key for v in genesis.validators))
    state.end_block()
    return state


def _spec(organisation: GenesisOrganisation) -> OrganisationSpec:
    if organisation.kind not in {k.value for k in OrgKind}:
        kinds = ", ".join(k.value for k in OrgKind)
        raise GenesisError(
            f"genesis organisation {organisation.org_id!r} has kind {organisation.kind!r}; "
            f"use one of: {kinds}"
        )
    return OrganisationSpec(
        organisation.org_id,
        organisation.name,
        OrgKind(organisation.kind),
        organisation.admins,
        organisation.public_key,
        organisation.encryption_key,
    )


def check_organisations(genesis: Genesis) -> None:
    """The founding organisations are well formed, their ids unique, and every
    validator names one of them (none names any on a chain without them)."""
    ids = [o.org_id for o in genesis.organisations]
    if len(set(ids)) != len(ids):
        raise GenesisError("the genesis names an organisation id twice; make them unique")
    accounts = [o.public_key for o in genesis.organisations]
    validators = {v.public_key for v in genesis.validators}
    if len(set(accounts)) != len(accounts) or validators & set(accounts):
        raise GenesisError(
            "two genesis organisations (or an organisation and a validator) share an "
            "account key; give each its own"
        )
    for validator in genesis.validators:
        if genesis.organisations and validator.organisation not in ids:
            raise GenesisError(
                f"validator {validator.name!r} names organisation "
                f"{validator.organisation!r}, which the genesis does not found; name one "
                f"of: {', '.join(ids)}"
            )
        if not genesis.organisations and validator.organisation:
            raise GenesisError(
                f"validator {validator.name!r} names organisation "
                f"{validator.organisation!r}, but the genesis founds none; add it to "
                "`organisations` or leave the validator's organisation empty"
            )


def _found(state: State, organisation: GenesisOrganisation) -> None:
    try:
        admit(state, _spec(organisation), 0)
    except ContractError as exc:
        raise GenesisError(f"genesis organisation {organisation.org_id!r}: {exc.message}") from exc


def _register_validator(state: State, validator: GenesisValidator) -> None:
    address = address_from_public_key(validator.public_key)
    save(
        state,
        identity_key(address),
        Identity(address, validator.public_key, b"", Role.VALIDATOR, validator.name, b"", 0),
    )


def _fork_state(genesis: Genesis, origin: ForkOrigin | None) -> State:
    if origin is None:
        raise GenesisError(
            f"genesis of {genesis.chain_id!r} carries a state but no fork origin; the file is "
            "corrupt: fetch the fork's genesis.json again from its operators"
        )
    keys = [entry.key for entry in genesis.state]
    if any(a >= b for a, b in pairwise(keys)):
        raise GenesisError(
            f"the state in the genesis of {genesis.chain_id!r} is not in ascending key order; "
            "the file is corrupt: fetch the fork's genesis.json again from its operators"
        )
    state = State({entry.key: entry.value for entry in genesis.state})
    if state.root() != origin.state_root:
        raise GenesisError(
            f"the state in the genesis of {genesis.chain_id!r} hashes to {state.root().hex()}, "
            f"not to the anchored state root {origin.state_root.hex()} of {origin.chain_id!r} "
            f"at height {origin.height}; the file is corrupt: fetch the fork's genesis.json "
            "again from its operators"
        )
    if not genesis.validators:
        raise GenesisError(f"the fork {genesis.chain_id!r} names no validators; add them")
    if genesis.organisations:
        raise GenesisError(
            f"the fork {genesis.chain_id!r} names organisations; a fork carries its "
            "parent's in its state: remove `organisations`"
        )
    state.begin_block()
    try:
        _install_fork(state, genesis, origin)
    except BaseException:
        state.discard_block()
        raise
    state.end_block()
    return state


def _install_fork(state: State, genesis: Genesis, origin: ForkOrigin) -> None:
    new = {address_from_public_key(v.public_key) for v in genesis.validators}
    old = {address_from_public_key(key) for key in validator_set(state)}
    old |= set((load(state, _CANDIDATES_KEY, CandidateSet) or CandidateSet(())).addresses)
    retired = sorted(old - new)
    _rebase_unbonding(state, genesis, origin.height)
    _rebase_bans(state, origin.height)
    _settle_rewards(state, genesis, origin.height, set(retired))
    for allocation in sorted(genesis.allocations, key=lambda a: a.address):
        credit(state, allocation.address, allocation.amount)
    for address in retired:
        _retire(state, address)
    for validator in genesis.validators:
        _check_fork_organisation(state, genesis, validator)
        _install_validator(state, validator)
    put_validator_set(state, tuple(v.public_key for v in genesis.validators))


def _install_validator(state: State, validator: GenesisValidator) -> None:
    """A new validator keeps its parent identity (and any votes) if it has one."""
    address = address_from_public_key(validator.public_key)
    identity = get_identity(state, address)
    if identity is None:
        _register_validator(state, validator)
    elif identity.role is not Role.VALIDATOR:
        raise GenesisError(
            f"validator {validator.name!r} ({format_address(address)}) is registered as a "
            f"{identity.role.value} on the parent chain; give the fork another key for it"
        )
    if get_candidate(state, address) is None:
        add_candidate(state, address, 0)


def _check_fork_organisation(state: State, genesis: Genesis, validator: GenesisValidator) -> None:
    if not validator.organisation:
        return
    org = get_organisation(state, validator.organisation)
    if org is None or not org.member:
        raise GenesisError(
            f"validator {validator.name!r} of the fork {genesis.chain_id!r} names "
            f"{validator.organisation!r}, which is not a member organisation of the parent"
        )


def _retire(state: State, address: bytes) -> None:
    """Withdraw `address`'s candidacy (votes for it go back to its voters as free
    stake) and ban it for good."""
    if get_candidate(state, address) is not None:
        for voter in voters_of(state, address):
            stake = get_stake(state, voter)
            _put_stake(state, voter, _set_allocation(stake, address, 0))
        state.delete(_voters_key(address))
        state.delete(_candidate_key(address))
        current = load(state, _CANDIDATES_KEY, CandidateSet) or CandidateSet(())
        remaining = tuple(a for a in current.addresses if a != address)
        save(state, _CANDIDATES_KEY, CandidateSet(remaining))
    _ban(state, address, BANNED_FOREVER)


def _entries_with_prefix(genesis: Genesis, prefix: bytes) -> list[tuple[bytes, bytes]]:
    return [(e.key, e.value) for e in genesis.state if e.key.startswith(prefix)]


def _rebase_unbonding(state: State, genesis: Genesis, height: int) -> None:
    """Unbonding due at parent height R is due at fork height R - height."""
    for key, value in _entries_with_prefix(genesis, b"stake/"):
        stake = decode(StakeAccount, value)
        if stake.unbonding:
            moved = tuple(
                replace(u, release_height=max(0, u.release_height - height))
                for u in stake.unbonding
            )
            save(state, key, replace(stake, unbonding=moved))


def _rebase_bans(state: State, height: int) -> None:
    """A ban until parent height U lasts until fork height U - height (lifted at the
    fork's first block if that has passed)."""
    index = load(state, _BAN_INDEX_KEY, BanIndex)
    for address in index.addresses if index is not None else ():
        ban = load(state, _ban_key(address), Ban)
        if ban is not None:
            save(state, _ban_key(address), Ban(max(0, ban.until - height)))


def _settle_rewards(state: State, genesis: Genesis, height: int, retired: set[bytes]) -> None:
    """Rewards still vesting at the fork are paid out at once to the proposers that
    stay, and forfeited by the retired ones (as a punished primary's would be)."""
    params = genesis.params
    proposers = set()
    for granted in range(max(1, height - params.reward_vesting_blocks), height + 1):
        grant = get_grant(state, granted)
        if grant is not None:
            proposers.add(grant.proposer)
    for proposer in sorted(proposers):
        owed = unvested_rewards(state, proposer, height, params)
        forfeit_rewards(state, proposer, height, params)
        if proposer not in retired and owed:
            credit(state, proposer, owed)
