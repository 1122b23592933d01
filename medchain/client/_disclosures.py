"""The patient's accounting of disclosures: ask every node and edge gateway whose API
URL is committed on chain for the patient's entries in its disclosure log, and check
them (a gateway serves its log with the node's routes).

A node's answer is checked twice: each entry's salted hash must be the one at its
seq in the node's public hash list, and that list must give every head the node
committed on chain. A node that changed, dropped or reordered an entry it committed
disagrees with its commitment at some seq, which the report names. Entries beyond the
node's last commitment are shown, not yet checkable (`uncommitted`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

import httpx

from medchain.app import HeadCommit, PurposeOfUse
from medchain.client._account import AccountCore
from medchain.crypto import AccountKeys, format_address, sign_read_request
from medchain.types import (
    DecodeError,
    Disclosure,
    LoggedDisclosure,
    MedchainError,
    decode,
    entry_hash,
    first_disagreement,
)

HASH_PAGE = 10_000
COMMIT_PAGE = 1_000
Connect = Callable[[str], httpx.Client]
"""An HTTP client for a node's URL (tests hand in in-process transports)."""


@dataclass(frozen=True, slots=True)
class SeenDisclosure:
    seq: int
    read: Disclosure


@dataclass(frozen=True, slots=True)
class NodeDisclosures:
    """What one node reports, and whether it holds up."""

    node: bytes
    api_url: str
    committed_seq: int
    """Entries the node's latest commitment covers."""
    entries: tuple[SeenDisclosure, ...]
    disagreement: int = 0
    """The first seq where the node's log disagrees with its commitment (0: none)."""
    error: str = ""
    """Why the node could not be asked or checked ('' if it was)."""
    gateway: bool = False
    """The committer is an edge gateway (its log: the reading statuses it told)."""

    @property
    def verified(self) -> bool:
        return not self.error and self.disagreement == 0

    @property
    def uncommitted(self) -> int:
        """Entries shown beyond the node's last commitment (not yet checkable)."""
        return sum(1 for e in self.entries if e.seq > self.committed_seq)


def default_connect(url: str) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=httpx.Timeout(30, connect=5))


def _json(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise MedchainError(f"HTTP {response.status_code}: {message}")
    return response.json()


def head_commits_from(http: httpx.Client, node: bytes) -> list[HeadCommit]:
    """Every head `node` committed, as the chain (the node `http` talks to) holds them."""
    found: list[HeadCommit] = []
    while True:
        query = urlencode({"node": format_address(node), "start": len(found)})
        body = _json(http.get(f"/v1/disclosures/commits?{query}"))
        page = [decode(HeadCommit, bytes.fromhex(c["encoded"])) for c in body["commits"]]
        found += page
        if not page or len(found) >= int(body["count"]):
            return found


def committed_nodes(http: httpx.Client) -> list[HeadCommit]:
    return [
        decode(HeadCommit, bytes.fromhex(c["encoded"]))
        for c in _json(http.get("/v1/disclosures/nodes"))
    ]


def is_gateway(http: httpx.Client, address: bytes) -> bool:
    """Whether the chain (the node `http` talks to) lists `address` as an edge gateway."""
    response = http.get(f"/v1/gateways/{format_address(address)}")
    if response.status_code == 404:
        return False
    _json(response)
    return True


def _hashes(http: httpx.Client, last: int) -> list[bytes]:
    found: list[bytes] = []
    while len(found) < last:
        first = len(found) + 1
        to = min(last, first + HASH_PAGE - 1)
        body = _json(http.get(f"/v1/disclosures/hashes?from={first}&to={to}"))
        page = [bytes.fromhex(h) for h in body["hashes"]]
        if not page:
            break
        found += page
    return found


class DisclosureAudit:
    """The patient's (or their `read` proxy's) view of every node's log. `home` is the
    node the client trusts for the chain's state (the commitments)."""

    def __init__(
        self,
        keys: AccountKeys,
        chain_id: str,
        home: str,
        connect: Connect = default_connect,
        clock_ms: Callable[[], int] = lambda: int(time.time() * 1000),
    ) -> None:
        self.keys = keys
        self.chain_id = chain_id
        self.home = home
        self.connect = connect
        self.clock_ms = clock_ms

    def disclosures(self, patient: bytes, record_id: bytes = b"") -> list[NodeDisclosures]:
        """Per node that committed a head: its entries of `patient` (of one record, if
        given), checked."""
        with self.connect(self.home) as home:
            nodes = committed_nodes(home)
            return [self._node(home, latest, patient, record_id) for latest in nodes]

    def _node(
        self, home: httpx.Client, latest: HeadCommit, patient: bytes, record_id: bytes
    ) -> NodeDisclosures:
        shown = NodeDisclosures(latest.node, latest.api_url, latest.seq, ())
        try:
            commits = head_commits_from(home, latest.node)
            shown = replace(shown, gateway=is_gateway(home, latest.node))
            with self.connect(latest.api_url) as http:
                entries = self._entries(http, patient, record_id)
                last = max([latest.seq, *(seq for seq, _ in entries)])
                hashes = _hashes(http, last)
        except (httpx.HTTPError, MedchainError, DecodeError, KeyError, ValueError) as exc:
            message = exc.message if isinstance(exc, MedchainError) else str(exc)
            return replace(shown, error=f"{latest.api_url}: {message or type(exc).__name__}")
        seen = tuple(SeenDisclosure(seq, e.disclosure) for seq, e in entries)
        bad = [
            seq
            for seq, e in entries
            if e.node != latest.node
            or e.disclosure.patient != patient
            or seq > len(hashes)
            or entry_hash(e) != hashes[seq - 1]
        ]
        chained = first_disagreement(hashes, [(c.seq, c.head) for c in commits])
        problems = [*bad, *([chained] if chained else [])]
        return replace(shown, entries=seen, disagreement=min(problems, default=0))

    def _entries(
        self, http: httpx.Client, patient: bytes, record_id: bytes
    ) -> list[tuple[int, LoggedDisclosure]]:
        query = {"patient": format_address(patient)}
        if record_id:
            query["record"] = record_id.hex()
        target = f"/v1/disclosures?{urlencode(query)}"
        purpose = PurposeOfUse.PATIENT_REQUEST.value
        header = sign_read_request(
            self.keys, self.chain_id, "GET", target, self.clock_ms(), purpose
        )
        body = _json(http.get(target, headers={"authorization": header}))
        return [
            (int(e["seq"]), decode(LoggedDisclosure, bytes.fromhex(e["encoded"])))
            for e in body["entries"]
        ]


def all_entries(reports: list[NodeDisclosures]) -> Iterator[tuple[NodeDisclosures, SeenDisclosure]]:
    """Every entry of every node, oldest read first."""
    pairs = [(r, e) for r in reports for e in r.entries]
    yield from sorted(pairs, key=lambda p: (p[1].read.time_ms, p[0].node, p[1].seq))


class DisclosureReads(AccountCore):
    """A mixin of MedchainClient: the accounting of disclosures of its account."""

    def disclosures(
        self, record_id: bytes | None = None, patient: bytes | None = None
    ) -> list[NodeDisclosures]:
        """Every committing node's reads of this account's data (or of `patient`'s, whose
        `read` proxy it is; of one record, if given), each node checked."""
        url = getattr(self.chain, "url", None)
        if not isinstance(url, str):
            raise MedchainError(
                "disclosures are kept by the nodes that serve reads: use a client of a node "
                "(HttpChain)"
            )
        audit = DisclosureAudit(self.keys, self.chain.chain_id, url, default_connect)
        return audit.disclosures(patient or self.keys.address, record_id or b"")
