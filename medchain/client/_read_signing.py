"""How `HttpChain` signs its reads of sealed data (a record version's wraps and
ciphertext, research copies, search, vitals, break-glass answers) and tells a node
what a blob belongs to.

A node serves sealed data only to a signed read request (medchain.crypto's
`sign_read_request`) by someone allowed to read it, and a blob only with the query
naming the record version, research copy, bundle or contribution that holds it. The
chain answers told the client which CID belongs to what; `ReadHints` remembers it
(bounded), so `HttpChain.blobs.get(cid)` keeps its signature.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from medchain.app import PurposeOfUse
from medchain.crypto import AccountKeys, sign_read_request

MAX_HINTS = 65_536
"""Most CIDs (and record owners) a chain view remembers; the oldest are forgotten."""
READ_PURPOSE_OWN = PurposeOfUse.PATIENT_REQUEST
"""The purpose of a patient's (or their proxy's) read of their own data, by default."""
READ_PURPOSE_DEFAULT = PurposeOfUse.TREATMENT
"""The purpose of anyone else's read, by default."""


K = TypeVar("K")
V = TypeVar("V")

BlobQuery = tuple[tuple[tuple[str, str], ...], bytes | None, PurposeOfUse | None]
"""The query naming what holds a blob, whose data it is (None: unknown), and the
purpose its read defaults to (None: as `ReadSigner.purpose_for` says)."""


def _remember(table: dict[K, V], key: K, value: V) -> None:
    table.pop(key, None)
    table[key] = value
    if len(table) > MAX_HINTS:
        del table[next(iter(table))]


@dataclass
class ReadHints:
    """What the chain's answers said: which record, research copy, bundle or
    contribution holds each CID (the query a blob is fetched with), and whose record
    each record id is (the purpose a read defaults to). Shared by an HttpChain and
    its views: these are public facts of the chain."""

    blobs: dict[str, BlobQuery] = field(default_factory=dict)
    owners: dict[bytes, bytes] = field(default_factory=dict)

    def blob(
        self,
        cid: str,
        query: dict[str, str],
        patient: bytes | None,
        purpose: PurposeOfUse | None = None,
    ) -> None:
        _remember(self.blobs, cid, (tuple(query.items()), patient, purpose))

    def blob_query(self, cid: str) -> BlobQuery:
        return self.blobs.get(cid, ((), None, None))

    def owner(self, record_id: bytes, owner: bytes) -> None:
        _remember(self.owners, record_id, owner)

    def owner_of(self, record_id: bytes) -> bytes | None:
        return self.owners.get(record_id)


@dataclass(frozen=True)
class ReadSigner:
    """Signs read requests for one account, for a purpose (None: PATRQT for the
    account's own data, TREAT otherwise)."""

    keys: AccountKeys
    purpose: PurposeOfUse | None = None
    clock_ms: Callable[[], int] = field(default=lambda: time.time_ns() // 1_000_000)

    def purpose_for(
        self, patient: bytes | None, default: PurposeOfUse | None = None
    ) -> PurposeOfUse:
        """The signer's purpose; else PATRQT for the account's own data, else `default`
        (e.g. HRESCH for research copies), else TREAT."""
        if self.purpose is not None:
            return self.purpose
        if patient == self.keys.address:
            return READ_PURPOSE_OWN
        return default or READ_PURPOSE_DEFAULT

    def sign(
        self,
        request: httpx.Request,
        chain_id: str,
        patient: bytes | None,
        default: PurposeOfUse | None = None,
    ) -> None:
        """Add the Authorization header to `request` (its body built already)."""
        request.headers["authorization"] = sign_read_request(
            self.keys,
            chain_id,
            request.method,
            request.url.raw_path.decode("ascii"),
            self.clock_ms(),
            self.purpose_for(patient, default).value,
            request.content,
        )


class ReadAuth(httpx.Auth):
    """Signs every request of an httpx client as a read by `keys` for `purpose`: for
    callers of the node's API that do not go through HttpChain (a load generator, a
    script): `httpx.get(url, auth=ReadAuth(keys, chain_id))`."""

    requires_request_body = True

    def __init__(
        self,
        keys: AccountKeys,
        chain_id: str,
        purpose: PurposeOfUse = READ_PURPOSE_DEFAULT,
    ) -> None:
        self._signer = ReadSigner(keys, purpose)
        self._chain_id = chain_id

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self._signer.sign(request, self._chain_id, None)
        yield request
