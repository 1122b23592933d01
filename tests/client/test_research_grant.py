"""Who may give a research organisation a copy of a record, or withdraw it, as the
SDK checks it from the chain's state before it builds the copy or sends anything: over
an in-process chain and over a node's HTTP API alike. The node's own refusal stays the
guard; this spares the copy and the upload, and says who may share instead."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from medchain.app import NotAProxy, NotOwner, ProxyRelation, ProxyScope, Role
from medchain.client import ChainBackend, HttpChain, MedchainClient, add_proxy
from medchain.crypto import AccountKeys
from medchain.types import MedchainError
from tests.api.harness import FakeNode, enlist, institution, make_chain, served

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
START_MS = 1_800_000_000_000
SUBMITS = ("submit", "submit_with_body", "submit_many")


class Clock:
    """The chain's block time, moved on by the test (a proxy's expiry is block time)."""

    def __init__(self) -> None:
        self.now_ms = START_MS

    def __call__(self) -> int:
        return self.now_ms


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["local", "http"])
def chain(request: pytest.FixtureRequest, clock: Clock) -> Iterator[ChainBackend]:
    if request.param == "local":
        yield make_chain(clock=clock)
        return
    with (
        served(lambda: FakeNode(make_chain(clock=clock))) as node,
        HttpChain(node.url, timeout_s=10) as http,
    ):
        yield http


def _person(chain: ChainBackend, role: Role, name: str) -> MedchainClient:
    return enlist(MedchainClient(AccountKeys.generate(), chain), role, name)


def _condition() -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / "condition.json").read_text()))


def _watch(chain: ChainBackend, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, record (and stop) every submit call the chain gets: a body is
    stored only with the transaction that names it, so none means nothing stored."""
    calls: list[str] = []

    def stopped(name: str) -> Any:
        def call(*args: object) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} was called")

        return call

    for name in SUBMITS:
        monkeypatch.setattr(chain, name, stopped(name))
    return calls


@pytest.fixture
def people(chain: ChainBackend) -> dict[str, MedchainClient]:
    return {
        "patient": _person(chain, Role.PATIENT, "Jane Roe"),
        "doctor": _person(chain, Role.DOCTOR, "Dr. Who"),
        "carer": _person(chain, Role.PATIENT, "John Roe"),
        "lab": institution(chain),
    }


def _refused_before_anything_is_sent(
    chain: ChainBackend,
    monkeypatch: pytest.MonkeyPatch,
    sharer: MedchainClient,
    record_id: bytes,
    lab: MedchainClient,
) -> MedchainError:
    """`sharer`'s refusal, once it is known nothing was sent, stored or committed."""
    height = chain.height
    calls = _watch(chain, monkeypatch)
    with pytest.raises(MedchainError) as refused:
        sharer.research_grant(record_id, lab.address)
    assert calls == [] and chain.height == height
    assert lab.research_data() == []
    return refused.value


def test_a_doctor_who_reads_the_record_may_not_share_it(
    chain: ChainBackend, people: dict[str, MedchainClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    patient, doctor, lab = people["patient"], people["doctor"], people["lab"]
    record_id = doctor.put_record(patient.address, _condition())
    assert doctor.read_record(record_id)["resourceType"] == "Condition"
    refused = _refused_before_anything_is_sent(chain, monkeypatch, doctor, record_id, lab)
    assert isinstance(refused, NotOwner)
    assert "only the patient who owns record" in refused.message
    assert "or their current `grant` proxy may share it" in refused.message


def test_a_proxy_without_the_grant_scope_may_not_share(
    chain: ChainBackend, people: dict[str, MedchainClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    patient, carer, lab = people["patient"], people["carer"], people["lab"]
    record_id = patient.put_record(patient.address, _condition())
    add_proxy(patient, carer.address, ProxyRelation.CARER, (ProxyScope.READ,))
    assert carer.read_record(record_id)["resourceType"] == "Condition"
    refused = _refused_before_anything_is_sent(chain, monkeypatch, carer, record_id, lab)
    assert isinstance(refused, NotAProxy)
    assert "you hold read, not grant" in refused.message


def test_an_expired_grant_proxy_may_not_share(
    chain: ChainBackend,
    people: dict[str, MedchainClient],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    patient, carer, lab = people["patient"], people["carer"], people["lab"]
    scopes = (ProxyScope.READ, ProxyScope.GRANT)
    add_proxy(patient, carer.address, ProxyRelation.CARER, scopes, START_MS + 60_000)
    clock.now_ms = START_MS + 120_000
    record_id = patient.put_record(patient.address, _condition())  # a block past the expiry
    refused = _refused_before_anything_is_sent(chain, monkeypatch, carer, record_id, lab)
    assert isinstance(refused, NotAProxy) and "expired" in refused.message


def test_the_owner_and_a_grant_proxy_share(people: dict[str, MedchainClient]) -> None:
    patient, carer, lab = people["patient"], people["carer"], people["lab"]
    add_proxy(patient, carer.address, ProxyRelation.PARENT, (ProxyScope.READ, ProxyScope.GRANT))
    mine = patient.put_record(patient.address, _condition())
    theirs = patient.put_record(patient.address, _condition())
    patient.research_grant(mine, lab.address)
    carer.research_grant(theirs, lab.address)
    assert sorted(item.entry.record_id for item in lab.research_data()) == sorted([mine, theirs])


def test_only_the_owner_or_a_grant_proxy_may_withdraw_a_research_copy(
    chain: ChainBackend, people: dict[str, MedchainClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    patient, doctor, carer = people["patient"], people["doctor"], people["carer"]
    lab = people["lab"]
    add_proxy(patient, carer.address, ProxyRelation.PARENT, (ProxyScope.READ, ProxyScope.GRANT))
    record_id = doctor.put_record(patient.address, _condition())
    patient.research_grant(record_id, lab.address)
    height = chain.height
    with monkeypatch.context() as watched:
        calls = _watch(chain, watched)
        with pytest.raises(NotOwner, match="or their current `grant` proxy may withdraw"):
            doctor.research_revoke(record_id, lab.address)
        assert calls == [] and chain.height == height
    assert [item.entry.record_id for item in lab.research_data()] == [record_id]
    carer.research_revoke(record_id, lab.address)
    assert lab.research_data() == []
