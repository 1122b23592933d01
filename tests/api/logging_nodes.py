"""Two API nodes over one in-memory chain, each with its own disclosure log and each
a validator that commits its log's head: what the disclosure tests of the API, the
client and the CLI read from."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
from fastapi import FastAPI

from medchain.api import create_api
from medchain.app import CommitHeadArgs, CredentialRole, Role
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys
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
