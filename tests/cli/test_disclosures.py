"""`medchain record disclosures` shows a patient who read what, when, through which
node and why, by name, each node checked; a tampered node fails it. `medchain node
check-disclosures` checks a node home's log against the chain."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.app import CredentialRole
from medchain.cli import _disclosures as command
from medchain.cli import app
from medchain.client import HttpChain
from medchain.crypto import format_address, save_keys
from medchain.node import DISCLOSURES_FILE, NODE_KEY_FILE, SqliteDisclosureLog
from tests.api.harness import HOSPITAL, SyncASGITransport, credential
from tests.api.logging_nodes import EdgeGateway, Network, a_read, change_entry, two_nodes

runner = CliRunner()
RECORD = b"\x01" * 16


@pytest.fixture
def net(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Network]:
    network = two_nodes(tmp_path)
    first = network.nodes[0]

    @contextlib.contextmanager
    def open_node(url: str) -> Iterator[HttpChain]:
        network.connect(first.url).close()  # builds the node's API once
        assert first.api is not None
        with HttpChain(url, transport=SyncASGITransport(first.api)) as chain:
            yield chain

    monkeypatch.setattr(command, "open_node", open_node)
    monkeypatch.setattr(command, "default_connect", network.connect)
    yield network
    network.close()


def reads(net: Network) -> None:
    credential(net.chain, HOSPITAL, net.doctor.address, CredentialRole.DOCTOR, "Dr Ana Ruiz")
    me, doc = net.patient.address, net.doctor.address
    net.nodes[0].log.append(a_read(doc, me, RECORD, 1))
    net.nodes[1].log.append(a_read(me, me, RECORD, 2, "PATRQT"))
    net.nodes[1].log.append(a_read(doc, me, b"\x02" * 16, 1, "HPAYMT"))
    for node, keys in zip(net.nodes, net.keys, strict=True):
        node.commit_head(keys)


def run(net: Network, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    key = tmp_path / "patient.key"
    if not key.exists():
        save_keys(key, net.patient.keys)
    result = runner.invoke(
        app, ["record", "disclosures", *args, "--key", str(key), "--node", net.nodes[0].url]
    )
    return result.exit_code, result.stdout, result.stderr


def test_the_patient_sees_every_read_by_name_verified(net: Network, tmp_path: Path) -> None:
    reads(net)
    code, out, err = run(net, tmp_path)
    assert code == 0, out + err
    rows = [line for line in out.splitlines() if "#" in line and "UTC" in line]
    assert len(rows) == 3 and all("verified" in row for row in rows)
    by_purpose = {p: [r for r in rows if p in r] for p in ("treatment", "requested", "payment")}
    (treat,), (own,), (paid,) = by_purpose.values()
    assert "Dr Ana Ruiz (test-hospital)" in treat and "v0 #1" in treat  # the genesis node
    assert "you" in own and "node-2 #1" in own and "patient requested" in own
    assert "Dr Ana Ruiz" in paid and "node-2 #2" in paid and "body of 020202" in paid
    assert out.count("log verified") == 2


def test_one_record_only(net: Network, tmp_path: Path) -> None:
    reads(net)
    code, out, _ = run(net, tmp_path, RECORD.hex())
    rows = [line for line in out.splitlines() if "UTC" in line]
    assert code == 0 and len(rows) == 2 and "payment" not in out


def test_a_tampered_node_is_named_and_fails_the_command(net: Network, tmp_path: Path) -> None:
    reads(net)
    change_entry(net.nodes[1].log.path, 2, "TREAT")
    code, out, err = run(net, tmp_path)
    assert code == 1
    assert "DISAGREES" in err and net.nodes[1].url in err and "#2" in err
    assert "log verified" in out  # the honest node still is


def test_a_tampered_gateway_is_named_and_fails_the_command(
    net: Network, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads(net)
    gateway = EdgeGateway(net, tmp_path)
    monkeypatch.setattr(command, "default_connect", gateway.connect(net))
    code, out, _ = run(net, tmp_path)
    assert code == 0, out
    assert "gateway ward 3 (http://gateway.test): 1 read(s), log verified up to #1" in out
    gateway.log.close()
    change_entry(gateway.log.path, 1, "TREAT")
    gateway.service.disclosures = gateway.log = SqliteDisclosureLog(
        gateway.log.path, gateway.keys.address
    )
    code, out, err = run(net, tmp_path)
    assert code == 1
    assert "gateway ward 3 (http://gateway.test): its log DISAGREES" in err.replace("\n", " ")
    gateway.log.close()


def test_a_local_chain_has_no_disclosures(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["record", "disclosures", "--key", str(tmp_path / "k"), "--data", str(tmp_path)]
    )
    assert result.exit_code == 1 and "--node" in result.stderr


def check(net: Network, home: Path) -> tuple[int, str]:
    result = runner.invoke(
        app, ["node", "check-disclosures", "--home", str(home), "--node", net.nodes[0].url]
    )
    return result.exit_code, result.stdout + result.stderr


def test_check_disclosures_of_a_node_home(net: Network, tmp_path: Path) -> None:
    reads(net)
    home = tmp_path / "home"  # the second node's home: its key and its log
    home.mkdir()
    save_keys(home / NODE_KEY_FILE, net.keys[1])
    assert net.nodes[1].log.flush(30)
    path = net.nodes[1].log.path
    for suffix in ("", "-wal", "-shm"):
        source = Path(str(path) + suffix)
        if source.exists():
            Path(str(home / DISCLOSURES_FILE) + suffix).write_bytes(source.read_bytes())
    code, out = check(net, home)
    assert code == 0 and "2 entries" in out and "up to #2 agree" in out, out
    change_entry(home / DISCLOSURES_FILE, 1, "HRESCH")
    code, out = check(net, home)
    assert code == 1 and "DISAGREES" in out and format_address(net.keys[1].address) in out
