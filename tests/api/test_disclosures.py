"""The disclosure endpoints: a patient's entries only to a signed request by the
patient or their read proxy (401 unsigned or forged, 403 anyone else); every entry's
salted hash to anyone; the heads nodes committed, from the chain."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from medchain.app import HeadCommit, ProxyRelation, ProxyScope, RotateArgs, rotation_message
from medchain.client import HttpChain, MedchainClient, add_proxy
from medchain.crypto import AccountKeys, ReadRequestInvalid, format_address, sign_read_request
from medchain.types import LoggedDisclosure, decode, entry_hash
from tests.api.harness import FakeNode, SyncASGITransport, api_client, make_chain
from tests.api.logging_nodes import Network, a_read, two_nodes


@pytest.fixture
def net(tmp_path: Path) -> Iterator[Network]:
    network = two_nodes(tmp_path)
    yield network
    network.close()


def signed_get(api: httpx.Client, keys: AccountKeys, target: str, **changes: Any) -> httpx.Response:
    now = int(time.time() * 1000)
    header = sign_read_request(
        keys,
        changes.get("chain_id", "medchain-test"),
        "GET",
        changes.get("signed_target", target),
        changes.get("time_ms", now),
        "PATRQT",
    )
    return api.get(target, headers={"authorization": header})


def target(patient: bytes, record: bytes = b"") -> str:
    query = f"patient={format_address(patient)}"
    return f"/v1/disclosures?{query}" + (f"&record={record.hex()}" if record else "")


def test_the_patient_sees_their_entries_in_full(net: Network) -> None:
    node = net.nodes[0]
    me, doc = net.patient.address, net.doctor.address
    reads = [
        a_read(doc, me, b"\x01" * 16, 1),
        a_read(doc, me, b"\x02" * 16, 1),
        a_read(me, me, b"\x01" * 16, 2),
    ]
    node.log.append(reads[0])
    node.log.append(a_read(doc, doc, b"\x03" * 16, 1))
    node.log.append(reads[1])
    node.log.append(reads[2])
    api = net.connect(node.url)
    response = signed_get(api, net.patient.keys, target(me))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["node"] == format_address(net.keys[0].address) and body["length"] == 4
    entries = [decode(LoggedDisclosure, bytes.fromhex(e["encoded"])) for e in body["entries"]]
    assert [e.disclosure for e in entries] == reads
    assert [e["seq"] for e in body["entries"]] == [1, 3, 4]
    assert [e["hash"] for e in body["entries"]] == [entry_hash(e).hex() for e in entries]
    first = body["entries"][0]
    assert (first["reader"], first["purpose"], first["kind"], first["basis"]) == (
        format_address(doc),
        "TREAT",
        "body",
        "reader",
    )
    one = signed_get(api, net.patient.keys, target(me, b"\x02" * 16)).json()
    assert [e["seq"] for e in one["entries"]] == [3]


def test_a_read_proxy_sees_them_and_nobody_else(net: Network) -> None:
    me = net.patient.address
    net.nodes[0].log.append(a_read(net.doctor.address, me, b"\x01" * 16, 1))
    api = net.connect(net.nodes[0].url)
    refused = signed_get(api, net.doctor.keys, target(me))
    assert refused.status_code == 403 and "read scope" in refused.json()["error"]["message"]
    add_proxy(net.patient, net.doctor.address, ProxyRelation.CARER, (ProxyScope.READ,))
    assert len(signed_get(api, net.doctor.keys, target(me)).json()["entries"]) == 1
    stranger = signed_get(api, AccountKeys.generate(), target(me))
    assert stranger.status_code == 403


@pytest.mark.parametrize(
    "how",
    [
        {},  # unsigned
        {"time_ms": 1_000},  # stale
        {"chain_id": "another-chain"},  # signed for something else
        {"signed_target": "/v1/disclosures?patient=x"},
    ],
)
def test_unsigned_stale_or_forged_requests_are_401(net: Network, how: dict[str, Any]) -> None:
    api = net.connect(net.nodes[0].url)
    me = net.patient.address
    keys = net.patient.keys
    response = signed_get(api, keys, target(me), **how) if how else api.get(target(me))
    assert response.status_code == 401
    code = ReadRequestInvalid.code if how else "read_unsigned"
    assert response.json()["error"]["code"] == code


def test_hashes_are_public_and_paged(net: Network) -> None:
    log = net.nodes[1].log
    for version in range(1, 6):
        log.append(a_read(net.doctor.address, net.patient.address, b"\x01" * 16, version))
    assert log.flush(30)
    api = net.connect(net.nodes[1].url)
    body = api.get("/v1/disclosures/hashes").json()
    assert body["length"] == 5 and body["first"] == 1
    assert body["hashes"] == [e.hash.hex() for e in log.written()]
    page = api.get("/v1/disclosures/hashes?from=2&to=3").json()
    assert page["hashes"] == body["hashes"][1:3] and page["first"] == 2
    assert api.get("/v1/disclosures/hashes?from=0").status_code == 400


def test_committed_heads_come_from_the_chain(net: Network) -> None:
    api = net.connect(net.nodes[0].url)
    assert api.get("/v1/disclosures/nodes").json() == []
    for node, keys in zip(net.nodes, net.keys, strict=True):
        node.log.append(a_read(net.doctor.address, net.patient.address, b"\x01" * 16, 1))
        node.commit_head(keys)
    net.nodes[0].log.append(a_read(net.doctor.address, net.patient.address, b"\x01" * 16, 2))
    net.nodes[0].commit_head(net.keys[0])
    latest = [
        decode(HeadCommit, bytes.fromhex(c["encoded"]))
        for c in api.get("/v1/disclosures/nodes").json()
    ]
    assert [(c.node, c.seq, c.api_url) for c in latest] == [
        (net.keys[0].address, 2, net.nodes[0].url),
        (net.keys[1].address, 1, net.nodes[1].url),
    ]
    node_one = format_address(net.keys[0].address)
    history = api.get(f"/v1/disclosures/commits?node={node_one}").json()
    assert history["count"] == 2 and [c["seq"] for c in history["commits"]] == [1, 2]
    paged = api.get(f"/v1/disclosures/commits?node={node_one}&start=1&limit=1").json()
    assert [c["seq"] for c in paged["commits"]] == [2]
    first = api.get(f"/v1/disclosures/commits?node={node_one}&limit=1").json()
    assert [c["seq"] for c in first["commits"]] == [1] and first["latest"]["seq"] == 2
    assert net.nodes[0].api is not None
    http = HttpChain(net.nodes[0].url, transport=SyncASGITransport(net.nodes[0].api))
    assert http.disclosure_head(net.keys[0].address) == latest[0]
    assert http.disclosure_head(net.doctor.address) is None


def test_a_node_without_a_log_says_so() -> None:
    chain = make_chain()
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register()
    response = api_client(FakeNode(chain)).get("/v1/disclosures/hashes")
    assert response.status_code == 404 and response.json()["error"]["code"] == "no_disclosure_log"


def test_a_rotated_patient_signs_with_the_new_key_only(net: Network) -> None:
    me = net.patient.address
    net.nodes[0].log.append(a_read(net.doctor.address, me, b"\x01" * 16, 1))
    new = AccountKeys.generate()
    message = rotation_message(
        net.chain.chain_id, me, new.public_key, new.encryption_public_key, new.ring_public_key
    )
    args = RotateArgs(
        new.public_key, new.encryption_public_key, new.ring_public_key, new.sign(message)
    )
    assert net.patient.send("keys.rotate", args).ok
    api = net.connect(net.nodes[0].url)
    assert len(signed_get(api, new, target(me)).json()["entries"]) == 1
    old = signed_get(api, net.patient.keys, target(me))
    assert old.status_code == 401 and old.json()["error"]["code"] == "key_retired"
