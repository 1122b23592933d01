"""The patient's accounting of disclosures: every node (and edge gateway) that
committed a head is asked; each lists exactly the patient's reads through it, verified
against its commitments; a node or gateway whose log was changed after it committed is
named with the seq where it disagrees, whether it changed an entry alone or its hash
list too."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from medchain.client import (
    DisclosureAudit,
    HttpChain,
    MedchainClient,
    NodeDisclosures,
    all_entries,
)
from medchain.client import _disclosures as disclosures_module
from medchain.node import SqliteDisclosureLog
from medchain.types import MedchainError
from tests.api.harness import SyncASGITransport
from tests.api.logging_nodes import (
    GATEWAY_URL,
    EdgeGateway,
    Network,
    a_read,
    change_entry,
    two_nodes,
)

RECORD, OTHER = b"\x01" * 16, b"\x02" * 16


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    network = two_nodes(tmp_path)
    yield network
    network.close()


def audit(net: Network) -> DisclosureAudit:
    return DisclosureAudit(net.patient.keys, net.chain.chain_id, net.nodes[0].url, net.connect)


def reads_through_both(net: Network) -> None:
    me, doc = net.patient.address, net.doctor.address
    one, two = net.nodes
    one.log.append(a_read(doc, me, RECORD, 1))
    one.log.append(a_read(doc, doc, OTHER, 1))  # someone else's data
    one.log.append(a_read(doc, me, OTHER, 2, "HPAYMT"))
    two.log.append(a_read(me, me, RECORD, 1, "PATRQT"))
    for node, keys in zip(net.nodes, net.keys, strict=True):
        node.commit_head(keys)


def by_node(reports: list[NodeDisclosures]) -> dict[bytes, NodeDisclosures]:
    return {r.node: r for r in reports}


def test_every_node_lists_the_patients_reads_verified(net: Network) -> None:
    reads_through_both(net)
    reports = by_node(audit(net).disclosures(net.patient.address))
    one, two = reports[net.keys[0].address], reports[net.keys[1].address]
    me, doc = net.patient.address, net.doctor.address
    assert [(e.seq, e.read) for e in one.entries] == [
        (1, a_read(doc, me, RECORD, 1)),
        (3, a_read(doc, me, OTHER, 2, "HPAYMT")),
    ]
    assert [e.read for e in two.entries] == [a_read(me, me, RECORD, 1, "PATRQT")]
    for report in (one, two):
        assert report.verified and report.disagreement == 0 and report.uncommitted == 0
    assert (one.committed_seq, one.api_url) == (3, net.nodes[0].url)
    merged = [(r.node, e.read.time_ms) for r, e in all_entries(list(reports.values()))]
    assert [t for _, t in merged] == sorted(t for _, t in merged) and len(merged) == 3


def test_one_records_reads_only(net: Network) -> None:
    reads_through_both(net)
    reports = audit(net).disclosures(net.patient.address, OTHER)
    assert [(r.node, [e.seq for e in r.entries]) for r in reports] == [
        (net.keys[0].address, [3]),
        (net.keys[1].address, []),
    ]
    assert all(r.verified for r in reports)


def test_reads_after_the_last_commitment_show_uncommitted(net: Network) -> None:
    reads_through_both(net)
    net.nodes[1].log.append(a_read(net.doctor.address, net.patient.address, RECORD, 2))
    report = by_node(audit(net).disclosures(net.patient.address))[net.keys[1].address]
    assert len(report.entries) == 2 and report.uncommitted == 1 and report.verified


def test_a_changed_entry_is_caught_at_its_seq(net: Network) -> None:
    reads_through_both(net)
    change_entry(net.nodes[0].log.path, 3, "TREAT")  # hide the payment purpose
    reports = by_node(audit(net).disclosures(net.patient.address))
    tampered = reports[net.keys[0].address]
    assert not tampered.verified and tampered.disagreement == 3
    assert reports[net.keys[1].address].verified


def test_a_changed_entry_with_its_hash_rewritten_disagrees_with_the_chain(net: Network) -> None:
    reads_through_both(net)
    change_entry(net.nodes[0].log.path, 1, "PATRQT", rehash=True)
    tampered = by_node(audit(net).disclosures(net.patient.address))[net.keys[0].address]
    assert not tampered.verified and tampered.disagreement == 3  # the head it committed


def test_an_unreachable_node_is_reported_not_fatal(net: Network) -> None:
    reads_through_both(net)

    def connect(url: str) -> httpx.Client:
        if url == net.nodes[1].url:
            raise httpx.ConnectError("connection refused")
        return net.connect(url)

    checker = DisclosureAudit(net.patient.keys, net.chain.chain_id, net.nodes[0].url, connect)
    reports = by_node(checker.disclosures(net.patient.address))
    down = reports[net.keys[1].address]
    assert not down.verified and net.nodes[1].url in down.error and down.entries == ()
    assert reports[net.keys[0].address].verified


def test_the_sdk_client_of_a_node_asks_them_all(
    net: Network, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads_through_both(net)
    monkeypatch.setattr(disclosures_module, "default_connect", net.connect)
    net.connect(net.nodes[0].url).close()  # builds the node's API once
    assert net.nodes[0].api is not None
    home = HttpChain(net.nodes[0].url, transport=SyncASGITransport(net.nodes[0].api))
    patient = MedchainClient(net.patient.keys, home)
    reports = patient.disclosures()
    assert [len(r.entries) for r in reports] == [2, 1] and all(r.verified for r in reports)
    assert [len(r.entries) for r in patient.disclosures(RECORD)] == [1, 1]


def test_a_client_of_a_local_chain_is_told_to_ask_a_node(net: Network) -> None:
    with pytest.raises(MedchainError, match="HttpChain"):
        net.patient.disclosures()


def test_the_gateways_reading_statuses_are_shown_beside_the_nodes_reads(
    net: Network, tmp_path: Path
) -> None:
    reads_through_both(net)
    gateway = EdgeGateway(net, tmp_path)
    checker = DisclosureAudit(
        net.patient.keys, net.chain.chain_id, net.nodes[0].url, gateway.connect(net)
    )
    reports = by_node(checker.disclosures(net.patient.address))
    assert set(reports) == {*(k.address for k in net.keys), gateway.keys.address}
    told = reports[gateway.keys.address]
    assert told.gateway and told.verified and told.api_url == GATEWAY_URL
    (seen,) = told.entries
    assert (seen.seq, seen.read.reader, seen.read.kind.value) == (1, net.patient.address, "vitals")
    assert gateway.reading.hex() in seen.read.detail
    assert not any(reports[k.address].gateway for k in net.keys)
    assert len(list(all_entries(list(reports.values())))) == 4
    gateway.log.close()


def test_a_gateway_whose_log_was_changed_is_named(net: Network, tmp_path: Path) -> None:
    gateway = EdgeGateway(net, tmp_path)
    gateway.log.close()
    change_entry(gateway.log.path, 1, "TREAT")  # hide that the patient asked, and why
    reopened = SqliteDisclosureLog(gateway.log.path, gateway.keys.address)
    gateway.service.disclosures = reopened
    checker = DisclosureAudit(
        net.patient.keys, net.chain.chain_id, net.nodes[0].url, gateway.connect(net)
    )
    (tampered,) = checker.disclosures(net.patient.address)
    assert tampered.gateway and tampered.node == gateway.keys.address
    assert not tampered.verified and tampered.disagreement == 1
    reopened.close()
