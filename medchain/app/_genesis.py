"""The state a chain starts from."""

from __future__ import annotations

from medchain.app._accounts import credit
from medchain.app._penalties import put_validator_set
from medchain.app._registry import Identity, Role, identity_key
from medchain.app._staking import add_candidate
from medchain.app._state import State, save
from medchain.crypto import address_from_public_key
from medchain.types import Genesis


def genesis_state(genesis: Genesis) -> State:
    """Allocations become balances; genesis validators become registered candidates
    and, in genesis order, the validator set that evidence is checked against."""
    state = State()
    state.begin_block()
    for allocation in sorted(genesis.allocations, key=lambda a: a.address):
        credit(state, allocation.address, allocation.amount)
    for validator in genesis.validators:
        address = address_from_public_key(validator.public_key)
        save(
            state,
            identity_key(address),
            Identity(address, validator.public_key, b"", Role.VALIDATOR, validator.name, b"", 0),
        )
        add_candidate(state, address, 0)
    put_validator_set(state, tuple(v.public_key for v in genesis.validators))
    state.end_block()
    return state
