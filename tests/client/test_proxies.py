"""A patient's proxies from the SDK on a LocalChain: a mother acting for her child."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medchain.app import AuditAction, ProxyRelation, ProxyScope, Role
from medchain.client import (
    MedchainClient,
    NotAReader,
    add_proxy,
    patients_of,
    proxies_of,
    remove_proxy,
)
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from medchain.types import TxFailed
from tests.api.harness import make_chain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CONDITION = json.loads((EXAMPLES / "condition.json").read_text())
HEART_RATE = json.loads((EXAMPLES / "observation-heart-rate.json").read_text())


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


FAMILY = ("child", "mother", "paediatrician")


@pytest.fixture
def family(chain: LocalChain) -> dict[str, MedchainClient]:
    """A child, their mother, and a paediatrician the mother lets read (reading needs
    no credential: every account registers as a patient)."""
    clients = {name: MedchainClient(AccountKeys.generate(), chain) for name in FAMILY}
    for name, client in clients.items():
        client.register(Role.PATIENT, name)
    return clients


def test_a_mother_acts_for_her_child(chain: LocalChain, family: dict[str, MedchainClient]) -> None:
    child, mother, paediatrician = family["child"], family["mother"], family["paediatrician"]
    earlier = child.put_record(child.address, CONDITION)
    own = child.put_record(child.address, HEART_RATE)

    # the child's key acts once: the mother reads and grants for the child from now on
    scopes = (ProxyScope.READ, ProxyScope.GRANT)
    added = add_proxy(child, mother.address, ProxyRelation.PARENT, scopes)
    assert added.receipt.ok and added.records == (earlier, own)
    assert [p.proxy for p in proxies_of(child)] == [mother.address]
    assert [p.patient for p in patients_of(mother)] == [child.address]

    assert mother.read_record(earlier)["resourceType"] == "Condition"
    later = child.put_record(child.address, HEART_RATE)  # wrapped for her as required
    assert mother.read_record(later)["resourceType"] == "Observation"
    child.add_version(earlier, CONDITION)
    assert mother.read_record(earlier, version=2)["resourceType"] == "Condition"

    mother.grant(later, paediatrician.address)
    assert paediatrician.read_record(later)["resourceType"] == "Observation"
    granted = child.audit(later)[-1]
    assert granted.action is AuditAction.GRANTED
    assert (granted.actor, granted.on_behalf, granted.subject) == (
        mother.address,
        child.address,
        paediatrician.address,
    )

    with pytest.raises(TxFailed) as refused:  # she may not write for the child
        mother.put_record(child.address, CONDITION)
    assert refused.value.code == "not_a_proxy"
    assert chain.patient_records(child.address) == [earlier, own, later]


def test_removing_a_read_proxy_closes_later_versions(family: dict[str, MedchainClient]) -> None:
    child, mother = family["child"], family["mother"]
    add_proxy(child, mother.address, ProxyRelation.CARER, (ProxyScope.READ,))
    record_id = child.put_record(child.address, CONDITION)
    removed = remove_proxy(child, mother.address)
    assert removed.receipt.ok and removed.records == (record_id,)
    assert proxies_of(child) == [] and patients_of(mother) == []
    child.add_version(record_id, CONDITION)
    assert mother.read_record(record_id, version=1)["resourceType"] == "Condition"
    with pytest.raises(NotAReader):
        mother.read_record(record_id, version=2)


def test_a_grant_only_proxy_is_not_warranted_on_records(
    family: dict[str, MedchainClient],
) -> None:
    child, mother = family["child"], family["mother"]
    record_id = child.put_record(child.address, CONDITION)
    added = add_proxy(child, mother.address, ProxyRelation.LEGAL, (ProxyScope.GRANT,))
    assert added.records == ()
    with pytest.raises(NotAReader):
        mother.read_record(record_id)
