"""Who the gateway tells of a reading (medchain.gateway._reading_access): the node's
vitals rule, learnt through the SDK's lookups on a LocalChain and cached per patient."""

from __future__ import annotations

import time
from typing import Any

import pytest

from medchain.app import ProxyRelation, ProxyScope, ReadNotAllowed, Role
from medchain.client import MedchainClient, add_proxy
from medchain.crypto import AccountKeys
from medchain.gateway._reading_access import ACCESS_CACHE_S, ReadingAccess, ReadingParties
from tests.gateway.test_service import Clock, World, world  # noqa: F401  (the fixture)


class Counting:
    """A chain whose lookups are counted (and refused once `closed`)."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self.lookups = 0
        self.closed = False

    def __getattr__(self, name: str) -> Any:
        found = getattr(self.chain, name)

        def counted(*args: Any) -> Any:
            assert not self.closed, f"looked up {name}"
            self.lookups += 1
            return found(*args)

        return counted


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _parties(world: World, committed: bool = True) -> ReadingParties:  # noqa: F811
    return ReadingParties(AccountKeys.generate().address, world.patient.address, committed)


def _person(world: World) -> MedchainClient:  # noqa: F811
    person = MedchainClient(AccountKeys.generate(), world.chain)
    person.register(Role.PATIENT, "someone")
    return person


def test_a_device_is_told_of_its_readings_without_a_lookup(world: World) -> None:  # noqa: F811
    chain = Counting(world.chain)
    chain.closed = True
    access = ReadingAccess(chain, world.clock)
    device = AccountKeys.generate()
    for committed in (False, True):
        parties = ReadingParties(device.address, world.patient.address, committed)
        account, basis = access.check(device.public_key, parties, _now_ms())
        assert (account, basis.basis) == (device.address, "device")
    with pytest.raises(ReadNotAllowed, match="not committed yet"):
        access.check(world.patient.keys.public_key, _parties(world, False), _now_ms())


def test_a_read_proxy_is_told_until_it_expires_and_the_facts_are_cached(
    world: World,  # noqa: F811
) -> None:
    proxy = _person(world)
    expires_ms = _now_ms() + 3_600_000
    add_proxy(world.patient, proxy.address, ProxyRelation.LEGAL, [ProxyScope.READ], expires_ms)
    chain = Counting(world.chain)
    access = ReadingAccess(chain, world.clock)
    parties = _parties(world)
    account, basis = access.check(proxy.keys.public_key, parties, _now_ms())
    assert (account, basis.basis, basis.on_behalf) == (
        proxy.address,
        "proxy",
        world.patient.address,
    )
    asked = chain.lookups
    access.check(world.patient.keys.public_key, parties, _now_ms())  # cached: no lookup
    assert chain.lookups == asked
    world.clock.now += ACCESS_CACHE_S
    with pytest.raises(ReadNotAllowed, match="read proxies"):
        access.check(proxy.keys.public_key, parties, expires_ms)  # expired by then
    assert chain.lookups > asked


def test_a_rotated_account_signs_with_its_new_key_only(world: World) -> None:  # noqa: F811
    reader = _person(world)
    world.patient.share_vitals(reader.address)
    old, account = reader.keys, reader.address
    new = AccountKeys.generate()
    reader.rotate_keys(new)
    access = ReadingAccess(world.chain, Clock())
    signer, basis = access.check(new.public_key, _parties(world), _now_ms())
    assert (signer, basis.basis) == (account, "vitals_reader")
    with pytest.raises(ReadNotAllowed, match="not the current key"):
        access.check(old.public_key, _parties(world), _now_ms())
