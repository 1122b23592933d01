"""Record bodies across live node processes: a body uploaded to one node (with its
transaction) is read from another (fetched over P2P channel 3, checked against its
CID); a copy damaged on the holder's disk is not served; forged bytes from a lying
peer are refused. Marked slow."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from medchain.app import CreateRecordArgs, CredentialRole, Role, new_record_id
from medchain.client import HttpChain, MedchainClient, ReadAuth, seal
from medchain.crypto import AccountKeys, load_keys, sha256
from medchain.node import (
    BLOBS_DIR,
    GENESIS_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    network_id,
    read_config,
    read_genesis,
)
from medchain.node._blobs import BLOB_CHANNEL, BlobStatus
from medchain.offchain import LocalBlobStore, cid_for
from medchain.p2p import PeerInfo, Transport
from tests.node.netharness import PATIENCE_S, LiveNet, live_net
from tests.waiting import until

pytestmark = pytest.mark.slow

LIAR = "node4"
"""The devnet's allowed observer identity, spoken in this process by a lying peer."""


def _store(net: LiveNet, name: str) -> LocalBlobStore:
    return LocalBlobStore(net.node(name).home / BLOBS_DIR)


@dataclass(frozen=True)
class Uploaded:
    """A body a new patient's record names, and how its owner reads it from any node."""

    cid: str
    query: str
    auth: ReadAuth


def _upload(net: LiveNet, name: str, body: bytes, *, store: bool = True) -> Uploaded:
    """Store `body` on node `name` the only way a client can: with the signed
    transaction naming it (a new patient's record of itself); with `store` false, the
    record names it but nobody uploads it."""
    (keys,) = net.fund(1)
    with HttpChain(net.url(name), timeout_s=30) as chain:
        uploader = MedchainClient(keys, chain)
        uploader.register(Role.PATIENT, "uploader")
        wraps = seal(b"{}", b"any", {keys.address: keys.encryption_public_key}).wraps
        args = CreateRecordArgs(keys.address, "Observation", cid_for(body), sha256(body), wraps)
        nonce = chain.account(keys.address).nonce
        if store:
            uploader.send_with_body("records.create", args, body)
        else:
            uploader.send("records.create", args)
        chain_id = chain.chain_id
    query = f"?record={new_record_id(keys.address, nonce).hex()}&version=1"
    return Uploaded(cid_for(body), query, ReadAuth(keys, chain_id))


def _get(net: LiveNet, name: str, blob: Uploaded) -> httpx.Response:
    """The owner's signed read of the blob from node `name`."""
    return net.http.get(f"{net.url(name)}/v1/blobs/{blob.cid}{blob.query}", auth=blob.auth)


def _sample(net: LiveNet, name: str, sample: str) -> float:
    for line in net.http.get(f"{net.url(name)}/metrics").text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_bodies_are_fetched_from_peers_and_checked_against_their_cid(tmp_path: Path) -> None:
    with live_net(tmp_path, observers=1) as net:
        net.start()

        # uploaded to node0, read from node2: fetched from a peer, identical, kept there
        body = os.urandom(300_000)
        uploaded = _upload(net, "node0", body)
        cid = uploaded.cid
        assert not _store(net, "node2").has(cid)
        response = _get(net, "node2", uploaded)
        assert response.status_code == 200 and response.content == body
        assert _store(net, "node2").get(cid) == body
        assert _sample(net, "node2", "medchain_blobs_fetched_total") == 1
        assert _sample(net, "node0", "medchain_blobs_served_total") == 1
        assert net.http.head(f"{net.url('node3')}/v1/blobs/{cid}").status_code == 200
        assert _store(net, "node3").get(cid) == body

        # damaged on the only holder's disk: not served, so not read anywhere
        other = os.urandom(50_000)
        damaged = _upload(net, "node1", other)
        _store(net, "node1").path_for(damaged.cid).write_bytes(other[:-1] + b"\x00")
        response = _get(net, "node3", damaged)
        assert response.status_code == 404, response.text
        error = response.json()["error"]
        assert error["code"] == "blob_not_found"
        assert "node1 holds a copy that does not match the CID (not served)" in error["message"]
        assert not _store(net, "node3").has(damaged.cid)
        declined = 'medchain_blob_requests_declined_total{reason="damaged"}'
        assert _sample(net, "node1", declined) == 1

        # a peer answering with forged bytes: refused by the fetching node, not stored
        asyncio.run(_with_a_lying_peer(net))


async def _with_a_lying_peer(net: LiveNet) -> None:
    home = net.node(LIAR).home
    config = read_config(home)
    node2 = next(p.key for p in config.peers if p.name == "node2")
    transport: Transport

    def lie(peer: bytes, frame: bytes) -> None:
        if frame[:2] == bytes([BLOB_CHANNEL, 1]):  # a request: answer "found", forged
            found = bytes([BLOB_CHANNEL, 2]) + frame[2:6] + bytes([BlobStatus.FOUND])
            transport.send(peer, found + b"forged record body")

    transport = Transport(
        load_keys(home / NODE_KEY_FILE),
        (home / NODE_CERT_FILE).read_bytes(),
        network_id(read_genesis(home / GENESIS_FILE)),
        "127.0.0.1",
        0,  # it dials the validators; nobody needs to dial it
        [PeerInfo(p.key, p.cert_pem, p.host, p.port, p.name) for p in config.peers],
        on_frame=lie,
        backoff_initial=0.05,
        backoff_max=0.5,
    )
    await transport.start()
    try:
        await until(lambda: node2 in transport.connected(), PATIENCE_S, "the link to node2")
        wanted = await asyncio.to_thread(
            _upload, net, "node2", b"a record body nobody uploaded", store=False
        )
        response = await asyncio.to_thread(_get, net, "node2", wanted)
        assert response.status_code == 404, response.text
        message = response.json()["error"]["message"]
        assert f"{LIAR} sent bytes that do not match the CID (refused)" in message
        assert not _store(net, "node2").has(wanted.cid)
        refused = 'medchain_blobs_refused_total{reason="cid_mismatch"}'
        assert await asyncio.to_thread(_sample, net, "node2", refused) == 1
    finally:
        await transport.close()


def test_a_record_whose_body_lives_on_another_node_is_fetched_and_decrypted(
    tmp_path: Path,
) -> None:
    examples = Path(__file__).parents[2] / "examples"
    resource = json.loads((examples / "observation-heart-rate.json").read_text())
    with live_net(tmp_path) as net:
        net.start()
        with HttpChain(net.url("node0"), timeout_s=30) as at_node0:
            doctor = MedchainClient(AccountKeys.generate(), at_node0)
            patient_keys = AccountKeys.generate()
            MedchainClient(patient_keys, at_node0).register(Role.PATIENT, "Jane Roe")
            doctor.register(Role.PATIENT, "Dr. Lee")  # a doctor's own account, then:
            admin = MedchainClient(net.founder_admin(), at_node0)
            admin.issue_credential(doctor.address, CredentialRole.DOCTOR, "Dr. Lee")
            record_id = doctor.put_record(patient_keys.address, resource)
        with HttpChain(net.url("node2"), timeout_s=30) as at_node2:
            patient = MedchainClient(patient_keys, at_node2)
            version = patient.chain.record_version(record_id, 1)  # a signed read
            assert version is not None
            cid = version.cid
            assert not _store(net, "node2").has(cid)  # only node0 holds the body
            assert patient.read_record(record_id) == resource  # fetched, checked, decrypted
            assert _store(net, "node2").has(cid)
        assert _sample(net, "node2", "medchain_blobs_fetched_total") == 1
