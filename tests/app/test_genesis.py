"""The genesis state with founding organisations: the checks a genesis must pass,
and a fork that carries its parent's organisations and credentials unchanged."""

from __future__ import annotations

import dataclasses

import pytest

from medchain.app import (
    CredentialRole,
    genesis_state,
    get_credential,
    member_organisations,
    organisations,
)
from medchain.crypto import AccountKeys
from medchain.types import ForkOrigin, Genesis, GenesisError, GenesisValidator, StateEntry
from tests.app.conftest import CHAIN_ID, OrgKeys, World, make_org


def _genesis(*orgs: OrgKeys, validator_org: str = "st-mary") -> Genesis:
    validator = GenesisValidator(AccountKeys.generate().public_key, "v0", 1, validator_org)
    return Genesis(
        CHAIN_ID,
        0,
        validators=(validator,),
        organisations=tuple(o.genesis_entry() for o in orgs),
    )


def _refused(genesis: Genesis, match: str) -> None:
    with pytest.raises(GenesisError, match=match):
        genesis_state(genesis)


def test_founding_organisations_are_members_from_height_zero() -> None:
    state = genesis_state(_genesis(make_org("st-mary"), make_org("lab-one", "laboratory")))
    assert [(o.org_id, o.member, o.joined_height) for o in member_organisations(state)] == [
        ("lab-one", True, 0),
        ("st-mary", True, 0),
    ]


def test_organisation_ids_are_unique() -> None:
    _refused(_genesis(make_org("st-mary"), make_org("st-mary")), "organisation id twice")


def test_an_organisation_needs_one_to_sixteen_admins() -> None:
    org = make_org("st-mary")
    none = dataclasses.replace(org.genesis_entry(), admins=())
    _refused(dataclasses.replace(_genesis(org), organisations=(none,)), "needs 1 to 16 admins")
    many = tuple(AccountKeys.generate().public_key for _ in range(17))
    crowded = dataclasses.replace(org.genesis_entry(), admins=many)
    _refused(dataclasses.replace(_genesis(org), organisations=(crowded,)), "not 17")


def test_keys_must_be_valid() -> None:
    org = make_org("st-mary")
    for change in (
        {"admins": (b"\x00" * 32,)},
        {"public_key": b"\x01" * 31},
        {"encryption_key": b"\x02" * 5},
    ):
        bad = dataclasses.replace(org.genesis_entry(), **change)
        _refused(dataclasses.replace(_genesis(org), organisations=(bad,)), "'st-mary'")


def test_the_kind_must_be_known() -> None:
    org = make_org("st-mary", "spa")
    _refused(_genesis(org), "has kind 'spa'; use one of: hospital")


def test_a_validator_names_a_genesis_organisation_when_there_are_any() -> None:
    _refused(_genesis(make_org("st-mary"), validator_org="elsewhere"), "'elsewhere'")
    _refused(_genesis(make_org("st-mary"), validator_org=""), "which the genesis does not found")
    _refused(_genesis(validator_org="st-mary"), "the genesis founds none")
    assert organisations(genesis_state(_genesis(validator_org=""))) == []


def test_organisation_accounts_are_distinct() -> None:
    org = make_org("st-mary")
    twin = dataclasses.replace(
        make_org("st-john").genesis_entry(), public_key=org.account.public_key
    )
    genesis = dataclasses.replace(_genesis(org), organisations=(org.genesis_entry(), twin))
    _refused(genesis, "share an account key")


def test_a_fork_carries_organisations_and_credentials_unchanged(
    world: World, founder: OrgKeys, validator: AccountKeys
) -> None:
    doctor = world.staff(CredentialRole.DOCTOR, "Dr Fork")
    parent = world.ledger.state
    entries = tuple(StateEntry(k, v) for k, v in parent.entries())
    origin = ForkOrigin(CHAIN_ID, world.height, b"\x01" * 32, parent.root())
    fork = Genesis(
        "medchain-fork",
        0,
        validators=(GenesisValidator(validator.public_key, "validator-0", 1, founder.org_id),),
        fork_of=(origin,),
        state=entries,
    )
    state = genesis_state(fork)
    carried = {k: v for k, v in state.entries() if k.startswith((b"org", b"cred", b"staff/"))}
    before = {e.key: e.value for e in entries if e.key.startswith((b"org", b"cred", b"staff/"))}
    assert carried == before and carried
    assert member_organisations(state) == member_organisations(parent)
    assert get_credential(state, doctor.address, founder.org_id) == get_credential(
        parent, doctor.address, founder.org_id
    )
    with pytest.raises(GenesisError, match="a fork carries its parent's in its state"):
        genesis_state(dataclasses.replace(fork, organisations=(founder.genesis_entry(),)))
    stranger = GenesisValidator(validator.public_key, "validator-0", 1, "no-such-org")
    with pytest.raises(GenesisError, match="not a member organisation of the parent"):
        genesis_state(dataclasses.replace(fork, validators=(stranger,)))
