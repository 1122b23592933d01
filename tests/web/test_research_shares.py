"""Which research organisations hold a copy of a record, read from its audit trail
(a revoke takes one off, a new grant gives its own height, an erasure takes them
all), and who may change them: the owner and a current `grant` proxy only."""

from __future__ import annotations

from medchain.app import ProxyRelation, ProxyScope, Role
from medchain.client import add_proxy
from medchain.crypto import AccountKeys, format_address
from medchain.web._research_shares import copies_held, research_shares
from tests.api.harness import RESEARCH
from tests.web.conftest import Ward

NOW_MS = 0
"""Proxies here never expire: any time will do."""


def test_the_trail_replayed_names_the_current_holders(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    patient = ward.client(ward.patient)
    institution = RESEARCH.account.address
    assert copies_held(patient, record_id) == {}
    patient.research_grant(record_id, institution)
    patient.research_revoke(record_id, institution)
    assert copies_held(patient, record_id) == {}
    second = patient.research_grant(record_id, institution)
    (entry,) = copies_held(patient, record_id).values()
    assert entry.subject == institution
    assert entry.tx_id == second.tx_id
    (holder,) = research_shares(patient, record_id, "", NOW_MS).holders
    assert holder.name == RESEARCH.genesis().name
    assert holder.address == format_address(institution)
    assert holder.shared.startswith(f"at block {entry.height}, ")
    patient.erase(record_id)
    assert copies_held(patient, record_id) == {}
    assert not research_shares(patient, record_id, "", NOW_MS).may_share


def test_a_grant_proxy_may_share_and_a_read_proxy_may_not(ward: Ward) -> None:
    record_id = ward.doctor_writes()
    patient = ward.client(ward.patient)
    keys = {scope: AccountKeys.generate() for scope in (ProxyScope.GRANT, ProxyScope.READ)}
    for scope, proxy in keys.items():
        ward.client(proxy).register(Role.PATIENT, f"Proxy {scope.value}")
        add_proxy(patient, proxy.address, ProxyRelation.PARENT, (scope, ProxyScope.READ))
    granting = ward.client(keys[ProxyScope.GRANT])
    assert research_shares(granting, record_id, "", NOW_MS).may_share
    assert not research_shares(ward.client(keys[ProxyScope.READ]), record_id, "", NOW_MS).may_share
    granting.research_grant(record_id, RESEARCH.account.address)
    assert list(copies_held(patient, record_id)) == [RESEARCH.account.address]
