"""The SDK's `erase`: the owner or their `grant` proxy erases a record; afterwards a
read fails with RecordErased saying when and by whom, in process and over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medchain.app import AddProxyArgs, ProxyRelation, ProxyScope, RecordErased, Role
from medchain.client import HttpChain, MedchainClient, add_proxy, erased_on
from medchain.crypto import AccountKeys, format_address
from medchain.node import LocalChain
from medchain.types import TxFailed
from tests.api.harness import FakeNode, Served, enlist, make_chain, served

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _resource() -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / "observation-heart-rate.json").read_text()))


def _person(chain: Any, role: Role, name: str) -> MedchainClient:
    return enlist(MedchainClient(AccountKeys.generate(), chain), role, name)


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


def test_the_owner_erases_and_every_later_read_says_so(chain: LocalChain) -> None:
    patient = _person(chain, Role.PATIENT, "Jane Roe")
    doctor = _person(chain, Role.DOCTOR, "Dr. Who")
    record_id = doctor.put_record(patient.address, _resource(), [doctor.address])
    version = chain.record_version(record_id, 1)
    assert version is not None and chain.blobs.has(version.cid)
    with pytest.raises(TxFailed) as refused:
        doctor.erase(record_id)  # a reader cannot
    assert refused.value.code == "not_owner"
    assert patient.erase(record_id, "I withdraw it").ok
    assert not chain.blobs.has(version.cid)
    record = patient.record(record_id)
    for reader in (patient, doctor):
        with pytest.raises(RecordErased) as erased:
            reader.read_record(record_id)
        message = erased.value.message
        assert format_address(patient.address) in message and erased_on(record) in message
    with pytest.raises(TxFailed) as again:
        patient.erase(record_id)
    assert again.value.code == "record_erased"


def test_a_grant_proxy_erases_for_the_patient(chain: LocalChain) -> None:
    patient = _person(chain, Role.PATIENT, "Jane Roe")
    parent = _person(chain, Role.PATIENT, "Joe Roe")
    record_id = patient.put_record(patient.address, _resource())
    scopes = (ProxyScope.GRANT,)
    patient.send("proxies.add", AddProxyArgs(parent.address, ProxyRelation.PARENT, scopes, 0))
    assert parent.erase(record_id).ok
    assert patient.record(record_id).erased_by == parent.address


def test_a_read_proxy_added_after_an_erasure_opens_only_the_other_records(
    chain: LocalChain,
) -> None:
    patient = _person(chain, Role.PATIENT, "Jane Roe")
    parent = _person(chain, Role.PATIENT, "Joe Roe")
    erased, kept = (patient.put_record(patient.address, _resource()) for _ in range(2))
    patient.erase(erased)
    change = add_proxy(patient, parent.address, ProxyRelation.PARENT, (ProxyScope.READ,))
    assert change.records == (kept,)
    assert parent.read_record(kept)["resourceType"] == "Observation"


@pytest.fixture(scope="module")
def node() -> Iterator[Served]:
    with served(lambda: FakeNode(make_chain())) as running:
        yield running


def test_erasure_over_http(node: Served) -> None:
    with HttpChain(node.url, timeout_s=10) as http:
        patient = _person(http, Role.PATIENT, "Jane Roe")
        record_id = patient.put_record(patient.address, _resource())
        assert patient.read_record(record_id)["resourceType"] == "Observation"
        patient.erase(record_id)
        record = http.record(record_id)
        assert record is not None and record.erased_by == patient.address
        with pytest.raises(RecordErased, match="erased by"):
            patient.read_record(record_id)
        with pytest.raises(TxFailed) as again:
            patient.erase(record_id)
        assert again.value.code == "record_erased"
