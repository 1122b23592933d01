"""Two API nodes over one in-memory chain, each with its own disclosure log and each
a validator that commits its log's head, and an edge gateway that commits its own:
what the disclosure tests of the API, the client and the CLI read from."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from fastapi import FastAPI

from medchain.api import create_api
from medchain.app import CommitHeadArgs, CredentialRole, DeviceKind, PurposeOfUse, Role
from medchain.client import MedchainClient, ReadAuth
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import DeviceKind as SimulatedKind
from medchain.gateway import GatewayConfig, GatewayService, SimulatedDevice, create_gateway_app
from medchain.gateway._disclosure_heads import GatewayHeads
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import make_call
from medchain.node import LocalChain, SqliteDisclosureLog
from medchain.types import (
    Disclosure,
    DisclosureKind,
    LoggedDisclosure,
    ReadBasis,
    decode,
    encode,
    entry_hash,
)
from tests.api.harness import (
    HOSPITAL,
    FakeNode,
    SyncASGITransport,
    admin,
    credential,
    make_chain,
    submit_as,
)

NOW_MS = 1_700_000_100_000


class LoggingNode(FakeNode):
    """A FakeNode that keeps a disclosure log as the networked node does."""

    def __init__(self, chain: LocalChain, log: SqliteDisclosureLog, url: str) -> None:
        super().__init__(chain)
        self.log = log
        self.disclosures = log  # type: ignore[assignment]  # a FakeNode logs in memory
        self.url = url
        self.api: FastAPI | None = None

    def commit_head(self, keys: AccountKeys) -> None:
        """Commit the log's written head on chain, signed by the node's key."""
        assert self.log.flush(30)
        seq, head = self.log.durable
        receipt = submit_as(
            self.local, keys, "disclosures.commit", CommitHeadArgs(seq, head, self.url)
        )
        assert receipt.ok, receipt.message


@dataclass
class Network:
    chain: LocalChain
    keys: tuple[AccountKeys, AccountKeys]
    nodes: tuple[LoggingNode, LoggingNode]
    patient: MedchainClient
    doctor: MedchainClient

    def connect(self, url: str) -> httpx.Client:
        """An HTTP client of the node at `url` (its API built once: it registers its
        metrics with the node)."""
        node = next(n for n in self.nodes if n.url == url)
        if node.api is None:
            node.api = create_api(node)
        return httpx.Client(base_url=url, transport=SyncASGITransport(node.api))

    def close(self) -> None:
        for node in self.nodes:
            node.log.close()


GATEWAY_URL = "http://gateway.test"


class EdgeGateway:
    """A registered edge gateway on the network's chain, its log in a file, whose
    reading of the patient the patient asked about (one entry), its head committed."""

    def __init__(self, net: Network, tmp_path: Path) -> None:
        hospital = admin(net.chain)
        self.keys = AccountKeys.generate()
        MedchainClient(net.keys[0], net.chain).transfer(self.keys.address, 100_000)
        hospital.register_gateway(self.keys.address, "ward 3")
        self.log = SqliteDisclosureLog(tmp_path / "gateway.sqlite", self.keys.address)
        config = GatewayConfig(device_cache_ms=0, readers_cache_ms=0, public_url=GATEWAY_URL)
        self.service = GatewayService(
            self.keys, net.chain, ReadingIndex(":memory:"), config, disclosures=self.log
        )
        self.app = create_gateway_app(self.service, background=False, threads=False)
        patient = format_address(net.patient.address)
        device = SimulatedDevice(SimulatedKind.PULSE_OXIMETER, patient)
        hospital.register_device(device.keys, net.patient.address, DeviceKind.PULSE_OXIMETER, "d")
        self.reading = self.service.submit(device.next_reading()).reading_id
        self.service.flush()
        auth = ReadAuth(net.patient.keys, net.chain.chain_id, PurposeOfUse.PATIENT_REQUEST)
        with self.http() as http:
            assert http.get(f"/v1/readings/{self.reading.hex()}", auth=auth).status_code == 200
        assert self.log.flush(30)
        heads = GatewayHeads(self.log, self.service.client, GATEWAY_URL, make_call(False))
        assert asyncio.run(heads.commit_once())

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=GATEWAY_URL, transport=SyncASGITransport(self.app))

    def connect(self, net: Network) -> Callable[[str], httpx.Client]:
        return lambda url: self.http() if url == GATEWAY_URL else net.connect(url)


def two_nodes(tmp_path: Path) -> Network:
    first, second = AccountKeys.generate(), AccountKeys.generate()
    chain = make_chain(first)
    credential(chain, HOSPITAL, second.address, CredentialRole.VALIDATOR, "node-2")
    MedchainClient(second, chain).register(Role.VALIDATOR, "node-2")
    nodes = tuple(
        LoggingNode(
            chain,
            SqliteDisclosureLog(tmp_path / f"node{i}.sqlite", keys.address),
            f"http://node{i}.test",
        )
        for i, keys in enumerate((first, second), 1)
    )
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "Pat")
    doctor = MedchainClient(AccountKeys.generate(), chain)
    doctor.register(Role.PATIENT, "Dr. Grey")
    return Network(chain, (first, second), (nodes[0], nodes[1]), patient, doctor)


def a_read(
    reader: bytes, patient: bytes, record: bytes, version: int, purpose: str = "TREAT"
) -> Disclosure:
    basis = ReadBasis.OWNER if reader == patient else ReadBasis.READER
    return Disclosure(
        NOW_MS + version, reader, patient, DisclosureKind.BODY, purpose, basis, record, version
    )


def change_entry(path: Path, seq: int, purpose: str, *, rehash: bool = False) -> None:
    """Change entry `seq`'s purpose on disk (and, with `rehash`, its stored hash too, as a
    node hiding the change from a patient would)."""
    with sqlite3.connect(path) as db:
        (raw,) = db.execute("SELECT entry FROM entries WHERE seq = ?", (seq,)).fetchone()
        entry = decode(LoggedDisclosure, bytes(raw))
        changed = replace(entry, disclosure=replace(entry.disclosure, purpose=purpose))
        db.execute("UPDATE entries SET entry = ? WHERE seq = ?", (encode(changed), seq))
        if rehash:
            db.execute("UPDATE entries SET hash = ? WHERE seq = ?", (entry_hash(changed), seq))
