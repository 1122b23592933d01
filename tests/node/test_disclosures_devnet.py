"""The accounting of disclosures on real node processes: a doctor reads a patient's
record through one node, the patient through the other; each node logs the reads it
served and commits its log's head on chain, and the patient's `medchain record
disclosures` lists exactly those reads, each verified against its node's committed
head. Marked slow."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.app import CredentialRole, Role
from medchain.cli import app as cli
from medchain.client import HttpChain, MedchainClient, NodeDisclosures
from medchain.crypto import AccountKeys, save_keys
from medchain.types import DisclosureKind, ReadBasis
from tests.node.netharness import PATIENCE_S, LiveNet, live_net
from tests.waiting import wait_until

pytestmark = pytest.mark.slow

CONDITION = {
    "resourceType": "Condition",
    "code": {"text": "Asthma"},
    "subject": {"reference": "Patient/p"},
}


def client(net: LiveNet, stack: ExitStack, keys: AccountKeys, node: str) -> MedchainClient:
    return MedchainClient(keys, stack.enter_context(HttpChain(net.url(node))))


def settled(reports: list[NodeDisclosures], nodes: int) -> bool:
    """Every node answered, each of its entries committed and verified."""
    return len(reports) == nodes and all(
        r.verified and r.entries and r.uncommitted == 0 for r in reports
    )


def test_reads_through_two_nodes_are_listed_and_verified(tmp_path: Path) -> None:
    with live_net(tmp_path, validators=2) as net, ExitStack() as stack:
        net.start()
        patient_keys, doctor_keys = net.fund(2)
        patient = client(net, stack, patient_keys, "node1")
        patient.register(name="Pat")
        doctor = client(net, stack, doctor_keys, "node0")
        doctor.register(Role.PATIENT, "Dr Ruiz")
        admin = client(net, stack, net.founder_admin(), "node0")
        admin.issue_credential(doctor.address, CredentialRole.DOCTOR, "Dr Ruiz")
        record_id = patient.put_record(patient.address, CONDITION)
        patient.grant(record_id, doctor.address)

        assert doctor.read_record(record_id)["code"]["text"] == "Asthma"  # through node0
        assert patient.read_record(record_id)["code"]["text"] == "Asthma"  # through node1

        found: list[NodeDisclosures] = []

        def committed() -> bool:
            found[:] = patient.disclosures()
            return settled(found, 2)

        wait_until(committed, PATIENCE_S, "both nodes' reads committed and verified")
        by_url = {r.api_url: r for r in found}
        through_0, through_1 = by_url[net.url("node0")], by_url[net.url("node1")]
        assert {(e.read.reader, e.read.basis) for e in through_0.entries} == {
            (doctor.address, ReadBasis.READER)
        }
        assert {(e.read.reader, e.read.basis) for e in through_1.entries} == {
            (patient.address, ReadBasis.OWNER)
        }
        for report in found:
            reads = [e.read for e in report.entries]
            assert {r.record_id for r in reads} == {record_id}
            assert {r.patient for r in reads} == {patient.address}
            assert {r.kind for r in reads} <= {DisclosureKind.WRAPS, DisclosureKind.BODY}
            assert DisclosureKind.BODY in {r.kind for r in reads}
        doctor_purposes = {e.read.purpose for e in through_0.entries}
        assert doctor_purposes == {"TREAT"}

        key = tmp_path / "patient.key"
        save_keys(key, patient_keys)
        shown = CliRunner().invoke(
            cli, ["record", "disclosures", "--key", str(key), "--node", net.url("node1")]
        )
        assert shown.exit_code == 0, shown.stdout + shown.stderr
        assert "Dr Ruiz" in shown.stdout and "you" in shown.stdout
        assert shown.stdout.count("log verified") == 2
