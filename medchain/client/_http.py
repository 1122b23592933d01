"""`HttpChain`: a node's HTTP API as the SDK's ChainBackend, so `MedchainClient`
works the same on a networked chain as on an in-process LocalChain.

Objects come back decoded from their canonical encoding (the API's `encoded`), not
rebuilt from JSON. Blobs fetched are checked against their CID: a node cannot slip
in other bytes."""

from __future__ import annotations

import copy
import functools
import hashlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, TypeVar
from urllib.parse import quote

import httpx

from medchain import app
from medchain.client._backend import SealedVersion
from medchain.client._http_access import AccessReads
from medchain.client._http_emergency import EmergencyReads
from medchain.client._http_recovery import RecoveryReads
from medchain.client._read_signing import ReadHints, ReadSigner
from medchain.client._sdk import NotAReader
from medchain.crypto import (
    KEY_WRAP_HEADER,
    AccountKeys,
    SearchToken,
    format_address,
    parse_address,
)
from medchain.offchain import BlobCorrupted, BlobNotFound, cid_for, parse_cid
from medchain.types import (
    UPLOAD_EXPIRES_HEADER,
    UPLOAD_SIGNATURE_HEADER,
    UPLOADER_HEADER,
    Block,
    ChainParams,
    DecodeError,
    Genesis,
    MedchainError,
    NodeStatus,
    PeerStatus,
    Receipt,
    Tx,
    TxFailed,
    bulk_upload_signing_bytes,
    decode,
    encode,
    tx_id,
)

T = TypeVar("T")
ReadOf = tuple[bytes | None, app.PurposeOfUse | None]
"""A read of sealed data: whose data it is, and the purpose it defaults to."""

DEFAULT_NODE_URL = "http://127.0.0.1:8600"
"""Where `medchain devnet up` serves its first node's API."""
_MAX_WAIT_S = 60.0
"""The API's bound on how long a submission may wait for its commit."""
_WAIT_MARGIN_S = 10.0
_MAX_DEVICE_LOOKUP = 1_000
_MAX_BATCH_TXS = 1_000  # the API's limit per POST /v1/txs/batch
_POLL_S = 0.1
_ALREADY_THERE = ("already_pending", "already_committed")
"""The API's bound on the devices one POST /v1/devices/lookup may name."""
_MAX_BLOB_BATCH_BYTES = 16 * 1024 * 1024
"""The API's default bound on a POST /v1/blobs/batch body."""
_MAX_BLOB_BATCH_BLOBS = 1_000
"""The API's bound on the blobs one POST /v1/blobs/batch may hold."""
_MAX_GATEWAY_PAGE = 500
"""Most gateways one GET /v1/gateways lists (the API's MAX_GATEWAY_PAGE)."""
_MAX_HEIGHTS = 10_000
"""What one POST /v1/chain/hashes takes (50,000 blocks of history at the default
checkpoint interval)."""
_RLP_PREFIX_MAX = 9
"""Most bytes RLP puts before a string or a list (1 + an 8-byte length)."""
UPLOAD_VALIDITY_MS = 5 * 60 * 1000
"""How long a signed bulk upload stays valid (a node accepts at most 10 minutes)."""


class NodeUnreachable(MedchainError):
    """No answer from the node: not running, wrong URL, or the network."""

    code = "node_unreachable"


class NodeError(MedchainError):
    """The node refused a request; `code` and the message are the node's."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class ReadRefused(NodeError, NotAReader):
    """The node refused a read of sealed data: the signer may not read it (its
    message names what they lack)."""


class UploadNotSigned(MedchainError):
    """A body was given to store with no transaction naming it and no uploader key."""

    code = "upload_unsigned"


class NotCommitted(MedchainError):
    """The node accepted the transaction but did not commit it in time."""

    code = "not_committed"


@dataclass(frozen=True, slots=True)
class TxStatus:
    tx_hash: bytes
    status: Literal["committed", "pending", "unknown"]
    height: int | None = None
    index: int | None = None
    receipt: Receipt | None = None


class HttpChain(AccessReads, EmergencyReads, RecoveryReads):
    """The chain as one node serves it at `url` (e.g. http://127.0.0.1:8600)."""

    def __init__(
        self,
        url: str = DEFAULT_NODE_URL,
        timeout_s: float = 30,
        *,
        transport: httpx.BaseTransport | None = None,
        keys: AccountKeys | None = None,
        purpose: app.PurposeOfUse | None = None,
    ) -> None:
        """`timeout_s` bounds each request, and how long `submit` waits for a commit
        (at most a minute). `transport` replaces the network, for tests. `keys` sign
        the reads of sealed data (wraps, ciphertexts, research copies, search, vitals)
        for `purpose` (by default PATRQT for the account's own data, else TREAT);
        without, a node refuses those reads (`reading_as` gives a signing view)."""
        self.url = _check_url(url)
        self.timeout_s = timeout_s
        self._http = httpx.Client(
            base_url=self.url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
            transport=transport,
            headers={"user-agent": "medchain-client"},
        )
        self.blobs = HttpBlobStore(self)
        self._signer = None if keys is None else ReadSigner(keys, purpose)
        self._hints = ReadHints()
        self._owns_http = True

    def reading_as(self, keys: AccountKeys, purpose: app.PurposeOfUse | None = None) -> HttpChain:
        """This chain, its reads signed by `keys` for `purpose`: a view sharing the
        connection (closing the view leaves it open)."""
        view = copy.copy(self)
        view._signer = ReadSigner(keys, purpose)
        view._owns_http = False
        view.blobs = HttpBlobStore(view)
        return view

    def __repr__(self) -> str:
        return f"HttpChain({self.url!r})"

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> HttpChain:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- the chain ------------------------------------------------------------------

    @cached_property
    def genesis(self) -> Genesis:
        return self._decoded(Genesis, self._get("/v1/genesis"))

    @property
    def chain_id(self) -> str:
        return self.genesis.chain_id

    @property
    def params(self) -> ChainParams:
        return self.genesis.params

    def submit(self, tx: Tx) -> Receipt:
        """Submit `tx` and wait for its commit: its receipt, or TxFailed when the call
        was refused on chain (its fee and nonce are spent) or by the node's dry run at
        admission (nothing spent). A transaction the node
        refuses outright raises NodeError with the node's code (e.g. nonce_reused);
        one not committed in time raises NotCommitted. A full mempool is retried, as
        the node asks, until `timeout_s`."""
        return self._until_committed(tx, "/v1/txs", {"tx": tx.encoded.hex()})

    def submit_with_body(self, tx: Tx, body: bytes) -> Receipt:
        """`submit` of `tx` with the off-chain body it names, in one request (POST
        /v1/records): the node admits the transaction, then stores the body. Refused
        with NodeError ciphertext_mismatch if `tx` does not name `body`, and
        upload_quota_exceeded while the account has its quota of bodies on the node
        that no committed transaction names yet. Sending it again after a lost answer
        is harmless."""
        return self._until_committed(
            tx, "/v1/records", {"tx": tx.encoded.hex(), "ciphertext": body.hex()}
        )

    def submit_raw(self, raw: bytes) -> Receipt | None:
        """POST /v1/txs with `raw` exactly as given, without waiting for a commit: the
        receipt if the transaction is already committed (a replay is answered with the
        original's), None if the node admitted it. A refusal raises NodeError with the
        node's code and HTTP status. For checking what a node accepts; use `submit`
        to send a transaction."""
        body = self._body(self._request("POST", "/v1/txs", json={"tx": raw.hex()}))
        if body.get("status") != "committed":
            return None
        return self._decoded(Receipt, _field(body, "receipt", self.url))

    def _until_committed(self, tx: Tx, path: str, payload: dict[str, str]) -> Receipt:
        wait = min(self.timeout_s, _MAX_WAIT_S)
        deadline = time.monotonic() + self.timeout_s
        while True:
            response = self._request(
                "POST",
                path,
                params={"wait": "true", "timeout_s": f"{wait:g}"},
                json=payload,
                timeout=wait + _WAIT_MARGIN_S,
            )
            delay = _retry_after(response)
            if delay is None or time.monotonic() + delay > deadline:
                break
            time.sleep(delay)
        try:
            body = self._body(response)
        except NodeError as exc:
            raise refused_call(tx, exc) from None
        if body.get("status") != "committed":
            raise NotCommitted(
                f"transaction {tx_id(tx).hex()} was accepted by {self.url} but not committed "
                f"within {wait:g} s; the chain may be stalled: check `medchain status` and "
                "look the transaction up later (tx_status)"
            )
        receipt = self._decoded(Receipt, _field(body, "receipt", self.url))
        if not receipt.ok:
            raise TxFailed(receipt)
        return receipt

    def bulk_blobs(self, uploader: AccountKeys) -> HttpBlobStore:
        """The node's blob store as an edge gateway writes to it: each bulk upload
        signed by `uploader`, which must be a gateway registered on chain."""
        return HttpBlobStore(self, uploader=uploader)

    def submit_many(self, txs: Sequence[Tx]) -> list[Receipt | MedchainError]:
        """Submit `txs` (POST /v1/txs/batch, in order, `_MAX_BATCH_TXS` a request) and
        wait until each admitted one is committed: per transaction its receipt, or the
        error that refused it (NodeError at admission, TxFailed on chain, NotCommitted
        after `timeout_s`). One sender's successive nonces cost one wait, not one each."""
        results: list[Receipt | MedchainError | None] = [None] * len(txs)
        waiting: dict[bytes, list[int]] = {}
        for start in range(0, len(txs), _MAX_BATCH_TXS):
            chunk = txs[start : start + _MAX_BATCH_TXS]
            body = self._body(
                self._request(
                    "POST", "/v1/txs/batch", json={"txs": [t.encoded.hex() for t in chunk]}
                )
            )
            answers = _field(body, "results", self.url)
            if not isinstance(answers, list) or len(answers) != len(chunk):
                raise _bad_response(self.url, "a batch answer that does not match the batch")
            for offset, (tx, answer) in enumerate(zip(chunk, answers, strict=True)):
                error = answer.get("error") if isinstance(answer, dict) else None
                error = error if isinstance(error, dict) else {}
                if (isinstance(answer, dict) and answer.get("accepted")) or error.get(
                    "code"
                ) in _ALREADY_THERE:
                    waiting.setdefault(tx_id(tx), []).append(start + offset)
                else:
                    code = str(error.get("code") or "refused")
                    message = str(error.get("message") or "the node refused the transaction")
                    results[start + offset] = refused_call(tx, NodeError(code, message, 400))
        deadline = time.monotonic() + self.timeout_s
        while waiting:
            for tx_hash, positions in list(waiting.items()):
                status = self.tx_status(tx_hash)
                if status.status != "committed" or status.receipt is None:
                    break  # one sender's transactions commit in nonce order: poll again
                receipt = status.receipt
                for position in positions:
                    results[position] = receipt if receipt.ok else TxFailed(receipt)
                del waiting[tx_hash]
            if waiting and time.monotonic() > deadline:
                for tx_hash, positions in waiting.items():
                    for position in positions:
                        results[position] = NotCommitted(
                            f"transaction {tx_hash.hex()} was accepted by {self.url} but not "
                            f"committed within {self.timeout_s:g} s; look it up later "
                            "(tx_status)"
                        )
                break
            if waiting:
                time.sleep(_POLL_S)
        return [r for r in results if r is not None]

    def tx_status(self, tx_hash: bytes) -> TxStatus:
        body = self._get(f"/v1/txs/{tx_hash.hex()}", missing=("unknown_tx",))
        if body is None:
            return TxStatus(tx_hash, "unknown")
        if body.get("status") == "pending":
            return TxStatus(tx_hash, "pending")
        receipt = self._decoded(Receipt, _field(body, "receipt", self.url))
        return TxStatus(tx_hash, "committed", body.get("height"), body.get("index"), receipt)

    @property
    def height(self) -> int:
        """The node's latest committed height."""
        height = _field(self._get("/v1/blocks/latest"), "height", self.url)
        if not isinstance(height, int):
            raise _bad_response(self.url, "a block height that is not a number")
        return height

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        return self.tx_status(tx_hash).receipt

    def latest_block(self) -> Block:
        return self._decoded(Block, self._get("/v1/blocks/latest"))

    def block_at(self, height: int) -> Block | None:
        if height < 0:
            return None
        body = self._get(f"/v1/blocks/{height}", missing=("unknown_block",))
        return None if body is None else self._decoded(Block, body)

    def status(self) -> NodeStatus:
        """What the node reports about itself (height, round, peers, mempool...)."""
        body = self._get("/v1/status")
        try:
            return NodeStatus(
                name=str(body["name"]),
                node_key=bytes.fromhex(body["node_key"]),
                validator=bool(body["validator"]),
                consensus=str(body["consensus"]),
                chain_id=str(body["chain_id"]),
                height=int(body["height"]),
                latest_hash=bytes.fromhex(body["latest_hash"]),
                latest_time_ms=int(body["latest_time_ms"]),
                state_root=bytes.fromhex(body["state_root"]),
                round=int(body["round"]),
                primary=None if body["primary"] is None else bytes.fromhex(body["primary"]),
                round_changes=int(body["round_changes"]),
                syncing=bool(body["syncing"]),
                peers=tuple(
                    PeerStatus(
                        bytes.fromhex(p["key"]),
                        str(p["name"]),
                        str(p["address"]),
                        bool(p["connected"]),
                        bool(p["validator"]),
                    )
                    for p in body["peers"]
                ),
                mempool_txs=int(body["mempool_txs"]),
                mempool_bytes=int(body["mempool_bytes"]),
                started_ms=int(body["started_ms"]),
                anchor_verified_height=(
                    None
                    if body.get("anchor_verified_height") is None
                    else int(body["anchor_verified_height"])
                ),
                anchor_alarm=str(body.get("anchor_alarm", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise _bad_response(self.url, f"a malformed status ({exc!r})") from None

    # -- anchoring ------------------------------------------------------------------

    def anchoring(self) -> dict[str, Any]:
        """The node's anchoring settings and its own check of its chain against its
        anchors, as GET /v1/anchoring serves them (`configured` false: it anchors not)."""
        return self._body(self._request("GET", "/v1/anchoring"))

    def mempool(self, limit: int = 50) -> dict[str, Any]:
        """The node's pending transactions, as GET /v1/mempool serves them: `count`,
        `bytes` and the first `limit` in `txs` (hash, sender, method, nonce, fee, size)."""
        return self._body(self._request("GET", "/v1/mempool", params={"limit": limit}))

    def block_ids(self, heights: Sequence[int]) -> dict[int, tuple[bytes, bytes | None]]:
        """(block id, state root) the node stores at each of `heights` it holds, in
        requests of 10,000 heights. The root is None from a node of a release that
        served only the ids; a block id commits to its root all the same."""
        found: dict[int, tuple[bytes, bytes | None]] = {}
        for start in range(0, len(heights), _MAX_HEIGHTS):
            chunk = list(heights[start : start + _MAX_HEIGHTS])
            body = self._body(self._request("POST", "/v1/chain/hashes", json={"heights": chunk}))
            try:
                found.update(_block_ids(body))
            except (KeyError, TypeError, ValueError, AttributeError):
                raise _bad_response(self.url, "block ids that are not hex by height") from None
        return found

    # -- state (ChainBackend) -----------------------------------------------------------

    def account(self, address: bytes) -> app.Account:
        return self._decoded(app.Account, self._get(f"/v1/accounts/{format_address(address)}"))

    def identity(self, address: bytes) -> app.Identity | None:
        body = self._get(f"/v1/identities/{format_address(address)}", missing=("not_registered",))
        return None if body is None else self._decoded(app.Identity, body)

    def record(self, record_id: bytes) -> app.Record | None:
        body = self._get(f"/v1/records/{record_id.hex()}", missing=("unknown_record",))
        if body is None:
            return None
        record = self._decoded(app.Record, body)
        self._hints.owner(record_id, record.owner)
        return record

    def record_version(self, record_id: bytes, number: int) -> app.RecordVersion | None:
        if number < 1:
            return None
        owner = self._hints.owner_of(record_id)
        body = self._get(
            f"/v1/records/{record_id.hex()}/versions/{number}",
            missing=("unknown_record", "unknown_version"),
            read_of=(owner, None),
        )
        if body is None:
            return None
        version = self._decoded(app.RecordVersion, body)
        query = {"record": record_id.hex(), "version": str(number)}
        self._hints.blob(version.cid, query, owner)
        return version

    def sealed_version(self, record_id: bytes, number: int) -> SealedVersion | None:
        """A version's ciphertext with the signer's own key wrap, in one signed request
        (the wraps of others are not fetched); None when the node names no wrap for the
        signer (an emergency or research reader reads the version's wraps instead)."""
        owner = self._hints.owner_of(record_id)
        path = f"/v1/records/{record_id.hex()}/versions/{number}/body"
        response = self._request("GET", path, read_of=(owner, None))
        if response.status_code != 200:
            self._body(response)  # raises the node's error
            raise _bad_response(self.url, f"HTTP {response.status_code} for {path}")
        wrap, cid = response.headers.get(KEY_WRAP_HEADER), response.headers.get("etag", "")
        if not wrap:
            return None
        cid = cid.strip('"')
        if hashlib.sha256(response.content).digest() != parse_cid(cid):
            raise BlobCorrupted(
                f"the node at {self.url} returned a ciphertext that does not match its CID "
                f"for version {number} of record {record_id.hex()}; read through another node"
            )
        return SealedVersion(cid, bytes.fromhex(wrap), response.content)

    def audit(self, record_id: bytes) -> list[app.AuditEntry]:
        body = self._get(f"/v1/records/{record_id.hex()}/audit", missing=("unknown_record",))
        return [] if body is None else self._list(app.AuditEntry, body, "entries")

    def patient_records(self, patient: bytes) -> list[bytes]:
        path = f"/v1/patients/{format_address(patient)}/records"
        body = self._get(path, missing=("not_registered",))  # no patient, no records
        return (
            []
            if body is None
            else [_unhex(i, self.url) for i in _field(body, "record_ids", self.url)]
        )

    def search(self, owner: bytes, token: SearchToken) -> list[list[bytes]]:
        body = self._body(
            self._request(
                "POST",
                "/v1/search",
                json={"owner": format_address(owner), "token": encode(token).hex()},
                read_of=(owner, None),
            )
        )
        return [[_unhex(v, self.url) for v in vs] for vs in _field(body, "values", self.url)]

    def research_data(self, institution: bytes) -> list[app.ResearchEntry]:
        research = app.PurposeOfUse.RESEARCH
        body = self._get(f"/v1/research/{format_address(institution)}", read_of=(None, research))
        entries = self._list(app.ResearchEntry, body, "entries")
        for e in entries:
            query = {"institution": format_address(institution), "record": e.record_id.hex()}
            self._hints.blob(e.cid, query, e.patient, research)
        return entries

    def anon_scope(self, name: str) -> app.AnonScope | None:
        body = self._get(f"/v1/anon/{quote(name, safe='')}", missing=("unknown_scope",))
        return None if body is None else self._decoded(app.AnonScope, body)

    def anon_entries(self, name: str) -> list[app.AnonEntry]:
        body = self._get(f"/v1/anon/{quote(name, safe='')}/entries", missing=("unknown_scope",))
        entries = [] if body is None else self._list(app.AnonEntry, body, "entries")
        for e in entries:
            query = {"scope": name, "index": str(e.index)}
            self._hints.blob(e.cid, query, None, app.PurposeOfUse.RESEARCH)
        return entries

    def role_count(self, role: app.Role) -> int:
        count = _field(self._get(f"/v1/roles/{role.value}"), "count", self.url)
        if not isinstance(count, int):
            raise _bad_response(self.url, "a role count that is not a number")
        return count

    def role_member(self, role: app.Role, index: int) -> bytes | None:
        if index < 0:
            return None
        body = self._get(f"/v1/roles/{role.value}/{index}", missing=("no_member",))
        if body is None:
            return None
        try:
            return parse_address(_field(body, "address", self.url))
        except (MedchainError, AttributeError) as exc:
            raise _bad_response(self.url, f"a malformed address ({exc})") from None

    def stake(self, address: bytes) -> app.StakeAccount:
        return self._decoded(app.StakeAccount, self._get(f"/v1/stakes/{format_address(address)}"))

    def candidates(self) -> list[app.Candidate]:
        return self._list(app.Candidate, self._get("/v1/candidates"), "candidates")

    def device(self, device: bytes) -> app.Device | None:
        body = self._get(f"/v1/devices/{format_address(device)}", missing=("unknown_device",))
        return None if body is None else self._decoded(app.Device, body)

    def devices(self, addresses: Sequence[bytes]) -> tuple[int, list[app.Device | None]]:
        """POST /v1/devices/lookup, in requests of at most 1,000 addresses (the API's
        limit). When a long list takes several requests and the chain moves on between
        them, the height is the lowest one answered: every device was read at that
        height or later, and a penalty restriction is never taken to lapse early."""
        height: int | None = None
        found: list[app.Device | None] = []
        for start in range(0, max(len(addresses), 1), _MAX_DEVICE_LOOKUP):
            chunk = addresses[start : start + _MAX_DEVICE_LOOKUP]
            body = self._body(
                self._request(
                    "POST",
                    "/v1/devices/lookup",
                    json={"devices": [format_address(a) for a in chunk]},
                )
            )
            answered = _field(body, "height", self.url)
            items = _field(body, "devices", self.url)
            if not isinstance(answered, int) or not isinstance(items, list):
                raise _bad_response(self.url, "a malformed device lookup")
            if len(items) != len(chunk):
                raise _bad_response(
                    self.url, f"{len(items)} devices for a lookup of {len(chunk)} addresses"
                )
            for address, item in zip(chunk, items, strict=True):
                device = None if item is None else self._decoded(app.Device, item)
                if device is not None and device.device != address:
                    raise _bad_response(self.url, "a device lookup answering other addresses")
                found.append(device)
            height = answered if height is None else min(height, answered)
        assert height is not None  # at least one request was sent
        return height, found

    def vitals_recipients(self, patients: Sequence[bytes]) -> list[dict[bytes, bytes] | None]:
        """POST /v1/patients/recipients, in requests of at most 1,000 patients."""
        found: list[dict[bytes, bytes] | None] = []
        for start in range(0, len(patients), _MAX_DEVICE_LOOKUP):
            chunk = patients[start : start + _MAX_DEVICE_LOOKUP]
            body = self._body(
                self._request(
                    "POST",
                    "/v1/patients/recipients",
                    json={"patients": [format_address(p) for p in chunk]},
                )
            )
            items = _field(body, "patients", self.url)
            if not isinstance(items, list) or len(items) != len(chunk):
                raise _bad_response(self.url, "a malformed recipients lookup")
            for patient, item in zip(chunk, items, strict=True):
                found.append(self._recipients(patient, item))
        return found

    def _recipients(self, patient: bytes, item: Any) -> dict[bytes, bytes] | None:
        try:
            answered = parse_address(item["patient"])
            listed = item["recipients"]
            recipients = (
                None
                if listed is None
                else {
                    parse_address(r["address"]): bytes.fromhex(r["encryption_key"]) for r in listed
                }
            )
        except (MedchainError, KeyError, TypeError, ValueError, AttributeError):
            raise _bad_response(self.url, "a malformed recipients lookup") from None
        if answered != patient:
            raise _bad_response(self.url, "a recipients lookup answering other patients")
        return recipients

    def devices_of(self, patient: bytes) -> list[app.Device]:
        path = f"/v1/patients/{format_address(patient)}/devices"
        body = self._get(path, missing=("not_registered",))
        return [] if body is None else self._list(app.Device, body, "devices")

    def device_audit(self, device: bytes) -> list[app.DeviceAuditEntry]:
        path = f"/v1/devices/{format_address(device)}/audit"
        body = self._get(path, missing=("unknown_device",))
        return [] if body is None else self._list(app.DeviceAuditEntry, body, "entries")

    def guardians_of(self, patient: bytes) -> tuple[bytes, ...]:
        path = f"/v1/patients/{format_address(patient)}/guardians"
        body = self._get(path, missing=("not_registered",))
        return () if body is None else self._addresses(body, "guardians")

    def proxies_of(self, patient: bytes) -> list[app.Proxy]:
        body = self._get(f"/v1/patients/{format_address(patient)}/proxies")
        return self._list(app.Proxy, body, "proxies")

    def patients_of(self, proxy: bytes) -> list[app.Proxy]:
        body = self._get(f"/v1/proxies/{format_address(proxy)}/patients")
        return self._list(app.Proxy, body, "patients")

    def required_readers(self, patient: bytes) -> tuple[bytes, ...]:
        body = self._get(f"/v1/patients/{format_address(patient)}/required-readers")
        return self._addresses(body, "readers")

    def consents_of(self, patient: bytes) -> list[app.StandingConsent]:
        body = self._get(f"/v1/patients/{format_address(patient)}/consents")
        return self._list(app.StandingConsent, body, "consents")

    def consent(self, consent_id: int) -> app.StandingConsent | None:
        body = self._get(f"/v1/consents/{consent_id}", missing=("unknown_consent",))
        return None if body is None else self._decoded(app.StandingConsent, body)

    def covering_consents(
        self, patient: bytes, author: bytes, resource_type: str
    ) -> list[app.StandingConsent]:
        path = f"/v1/patients/{format_address(patient)}/consents"
        query = {"author": format_address(author), "resource_type": resource_type}
        body = self._body(self._request("GET", path, params=query))
        return self._list(app.StandingConsent, body, "consents")

    def reader_grants(self, record_id: bytes) -> list[app.ReaderGrant]:
        body = self._get(f"/v1/records/{record_id.hex()}", missing=("unknown_record",))
        return [] if body is None else self._list(app.ReaderGrant, body, "grants")

    def vitals(
        self, patient: bytes, from_ms: int, to_ms: int, device: bytes | None = None
    ) -> list[app.VitalsEntry]:
        params: dict[str, str | int] = {"from_ms": from_ms, "to_ms": to_ms}
        if device is not None:
            params["device"] = format_address(device)
        response = self._request(
            "GET",
            f"/v1/patients/{format_address(patient)}/vitals",
            params=params,
            read_of=(patient, None),
        )
        if response.status_code == 404 and _error_code(response) == "not_registered":
            return []  # as the chain answers for an account that never had vitals
        entries = self._list(app.VitalsEntry, self._body(response), "entries")
        for e in entries:
            self._hints.blob(e.cid, _bundle_query(e.batch_id, patient), patient)
        return entries

    def vitals_readers_of(self, patient: bytes) -> tuple[bytes, ...]:
        path = f"/v1/patients/{format_address(patient)}/vitals-readers"
        body = self._get(path, missing=("not_registered",))
        return () if body is None else self._addresses(body, "readers")

    def gateway(self, address: bytes) -> app.Gateway | None:
        body = self._get(f"/v1/gateways/{format_address(address)}", missing=("unknown_gateway",))
        return None if body is None else self._decoded(app.Gateway, body)

    def fleet_counts(self) -> app.FleetCounts:
        """Gateways active and revoked, devices by kind and state in force, as the
        node's index of its blocks counts them (GET /v1/fleet)."""
        body = self._get("/v1/fleet")
        try:
            devices = tuple(
                app.DeviceCount(app.DeviceKind(d["kind"]), app.DeviceState(d["state"]), d["count"])
                for d in body["devices"]
            )
            numbers = [
                body[k] for k in ("height", "complete_from", "gateways_active", "gateways_revoked")
            ]
        except (KeyError, TypeError, ValueError):
            raise _bad_response(self.url, "gateway and device counts of another shape") from None
        if not all(isinstance(n, int) for n in [*numbers, *(d.count for d in devices)]):
            raise _bad_response(self.url, "gateway and device counts that are not numbers")
        height, complete_from, active, revoked = numbers
        return app.FleetCounts(height, complete_from, active, revoked, devices)

    def gateways(self, start: int, count: int) -> tuple[int, list[app.Gateway]]:
        """How many gateways the node lists, and `count` of them from `start`, in
        registration order (GET /v1/gateways, in pages of at most 500)."""
        start, found = max(0, start), list[app.Gateway]()
        while True:
            ask = max(1, min(count - len(found), _MAX_GATEWAY_PAGE))
            body = self._get(f"/v1/gateways?start={start + len(found)}&count={ask}")
            total = _field(body, "total", self.url)
            if not isinstance(total, int):
                raise _bad_response(self.url, "a gateway total that is not a number")
            page = self._list(app.Gateway, body, "gateways")
            found += page
            if len(found) >= count or len(page) < ask:
                return total, found[: max(0, count)]

    def disclosure_head(self, committer: bytes) -> app.HeadCommit | None:
        path = f"/v1/disclosures/commits?node={format_address(committer)}&limit=1"
        latest = self._get(path).get("latest")
        return None if latest is None else self._decoded(app.HeadCommit, latest)

    def batch(self, batch_id: bytes) -> app.Batch | None:
        body = self._get(f"/v1/batches/{batch_id.hex()}", missing=("unknown_batch",))
        if body is None:
            return None
        batch = self._decoded(app.Batch, body)
        for bundle in batch.bundles:
            self._hints.blob(bundle.cid, _bundle_query(batch_id, bundle.patient), bundle.patient)
        return batch

    # -- HTTP -------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        timeout: float | None = None,
        read_of: ReadOf | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """`read_of`: a read of sealed data, signed when the chain has keys: whose data
        it is (None: unknown) and the purpose it defaults to (None: TREAT)."""
        try:
            request = self._http.build_request(
                method, path, timeout=self.timeout_s if timeout is None else timeout, **kwargs
            )
            if read_of is not None and self._signer is not None:
                self._signer.sign(request, self.chain_id, *read_of)
            return self._http.send(request)
        except httpx.TimeoutException:
            raise NodeUnreachable(
                f"the medchain node at {self.url} did not answer within "
                f"{timeout or self.timeout_s:g} s; check that it is running (`medchain status`) "
                "or try again"
            ) from None
        except httpx.TransportError as exc:
            raise NodeUnreachable(
                f"cannot reach the medchain node at {self.url} ({exc or type(exc).__name__}); "
                "check --node (env MEDCHAIN_NODE) and that the node is running "
                "(`medchain devnet up` starts a local devnet)"
            ) from None

    def _get(self, path: str, missing: tuple[str, ...] = (), read_of: ReadOf | None = None) -> Any:
        """The JSON body; None for a 404 carrying one of the `missing` codes. `read_of`:
        a signed read (see `_request`)."""
        response = self._request("GET", path, read_of=read_of)
        if response.status_code == 404 and _error_code(response) in missing:
            return None
        return self._body(response)

    def _body(self, response: httpx.Response) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code == 404 and _error_code(response) in (None, "not_found"):
            raise NodeError(
                "endpoint_missing",
                f"the node at {self.url} does not serve {response.request.url.path} (HTTP 404):"
                " is it a medchain node of this version? check --node, or upgrade the node",
                404,
            )
        if response.status_code >= 400:
            error = body.get("error") if isinstance(body, dict) else None
            if (
                isinstance(error, dict)
                and isinstance(error.get("code"), str)
                and isinstance(error.get("message"), str)
            ):
                refusal = ReadRefused if error["code"] == app.ReadNotAllowed.code else NodeError
                raise refusal(error["code"], error["message"], response.status_code)
            raise _bad_response(
                self.url, f"HTTP {response.status_code} without an error body", response.status_code
            )
        if not isinstance(body, dict):
            raise _bad_response(self.url, f"HTTP {response.status_code} without a JSON object")
        return body

    def _decoded(self, cls: type[T], body: Any) -> T:
        try:
            return decode(cls, bytes.fromhex(body["encoded"]))
        except (KeyError, TypeError, ValueError, DecodeError):
            raise _bad_response(self.url, f"no valid encoded {cls.__name__}") from None

    def _addresses(self, body: Mapping[str, Any], key: str) -> tuple[bytes, ...]:
        items = _field(body, key, self.url)
        if not isinstance(items, list):
            raise _bad_response(self.url, f"{key} that are not a list")
        try:
            return tuple(parse_address(a) for a in items)
        except (MedchainError, AttributeError, TypeError) as exc:
            raise _bad_response(self.url, f"a malformed address ({exc})") from None

    def _list(self, cls: type[T], body: Mapping[str, Any], key: str) -> list[T]:
        items = _field(body, key, self.url)
        if not isinstance(items, list):
            raise _bad_response(self.url, f"{key} that is not a list")
        return [self._decoded(cls, item) for item in items]


class HttpBlobStore:
    """The node's blob store, as a BlobStore; every fetched blob is checked against
    its CID before it is returned, and every CID the node answers for a stored blob
    against the blob's bytes.

    Anyone may read. Only an edge gateway writes (`uploader`: its key, registered on
    chain): each POST /v1/blobs/batch is signed by it, and holds at most
    `max_batch_blobs` blobs and `max_batch_bytes` bytes (the API's defaults; lower them
    for a node configured with less). A record's body goes with the transaction naming
    it instead (`HttpChain.submit_with_body`)."""

    def __init__(
        self,
        chain: HttpChain,
        *,
        uploader: AccountKeys | None = None,
        max_batch_bytes: int = _MAX_BLOB_BATCH_BYTES,
        max_batch_blobs: int = _MAX_BLOB_BATCH_BLOBS,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        """`clock_ms` dates the upload signatures (ms since the Unix epoch)."""
        if max_batch_blobs < 1 or max_batch_bytes <= 2 * _RLP_PREFIX_MAX:
            raise ValueError("a blob batch must hold at least one blob and a few bytes")
        self._chain = chain
        self.uploader = uploader
        self.max_batch_bytes = max_batch_bytes
        self.max_batch_blobs = max_batch_blobs
        self._clock_ms = clock_ms

    def __repr__(self) -> str:
        return f"HttpBlobStore({self._chain.url!r})"

    def put(self, data: bytes) -> str:
        """Store one blob (a gateway's bulk upload of one)."""
        return self.put_many([data])[0]

    def put_many(self, blobs: Sequence[bytes]) -> list[str]:
        """Store the blobs in as few signed requests as the batch limits allow and
        return their CIDs in order (a blob over the byte limit goes alone). Requests
        already answered stay stored when a later one fails."""
        for index, data in enumerate(blobs):
            if not isinstance(data, bytes):
                raise TypeError(f"blob {index}: a blob is bytes, got {type(data).__name__}")
        uploader = self.uploader
        if uploader is None:
            if not blobs:
                return []
            raise UploadNotSigned(
                "a node stores a body only with the transaction that names it "
                "(HttpChain.submit_with_body, which MedchainClient uses), or in an edge "
                "gateway's signed bulk upload (HttpChain.bulk_blobs(gateway_keys)); this "
                "blob store has no uploader key"
            )
        cids: list[str] = []
        for group in self._batches(blobs):
            cids += self._put_batch(group, uploader)
        return cids

    def _batches(self, blobs: Sequence[bytes]) -> Iterator[Sequence[bytes]]:
        """Consecutive groups within both limits (a lone blob over the byte limit is
        a group of its own)."""
        start, size = 0, _RLP_PREFIX_MAX
        for end, data in enumerate(blobs):
            item = len(data) + _RLP_PREFIX_MAX
            if end > start and (
                end - start >= self.max_batch_blobs or size + item > self.max_batch_bytes
            ):
                yield blobs[start:end]
                start, size = end, _RLP_PREFIX_MAX
            size += item
        if start < len(blobs):
            yield blobs[start:]

    def _put_batch(self, group: Sequence[bytes], uploader: AccountKeys) -> list[str]:
        url = self._chain.url
        body = encode(group, tuple[bytes, ...])
        expires_ms = self._clock_ms() + UPLOAD_VALIDITY_MS
        signed = bulk_upload_signing_bytes(self._chain.chain_id, expires_ms, body)
        response = self._chain._request(
            "POST",
            "/v1/blobs/batch",
            content=body,
            headers={
                "content-type": "application/octet-stream",
                UPLOADER_HEADER: uploader.public_key.hex(),
                UPLOAD_EXPIRES_HEADER: str(expires_ms),
                UPLOAD_SIGNATURE_HEADER: uploader.sign(signed).hex(),
            },
        )
        cids = _field(self._chain._body(response), "cids", url)
        if not isinstance(cids, list) or len(cids) != len(group):
            raise _bad_response(url, f"no list of {len(group)} CIDs for a batch of {len(group)}")
        if any(cid != cid_for(data) for cid, data in zip(cids, group, strict=True)):
            raise _bad_response(url, "a CID that does not name the stored bytes")
        return [str(cid) for cid in cids]

    def get(self, cid: str) -> bytes:
        digest = parse_cid(cid)
        query, patient, purpose = self._chain._hints.blob_query(cid)
        response = self._chain._request(
            "GET", f"/v1/blobs/{cid}", params=query, read_of=(patient, purpose)
        )
        if response.status_code == 404 and _error_code(response) == BlobNotFound.code:
            raise BlobNotFound(
                f"blob {cid} is not stored on the node at {self._chain.url}; fetch it from the "
                "node it was uploaded to, or check the CID in the record"
            )
        if response.status_code != 200:
            self._chain._body(response)  # raises the node's error
        if hashlib.sha256(response.content).digest() != digest:
            raise BlobCorrupted(
                f"the node at {self._chain.url} returned bytes that do not match blob {cid}; "
                "fetch it from another node"
            )
        return response.content

    def has(self, cid: str) -> bool:
        parse_cid(cid)
        response = self._chain._request("HEAD", f"/v1/blobs/{cid}")
        if response.status_code == 410:  # a HEAD answer has no body to say so
            raise app.RecordErased(
                f"blob {cid} belongs to a record its patient erased: the node at "
                f"{self._chain.url} deleted it and serves it no more"
            )
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise _bad_response(self._chain.url, f"HTTP {response.status_code} for HEAD {cid}")


def _bundle_query(batch_id: bytes, patient: bytes) -> dict[str, str]:
    return {"batch": batch_id.hex(), "patient": format_address(patient)}


def is_http_url(text: str) -> bool:
    """Whether `text` is an http(s) URL with a host that httpx accepts (it refuses some
    with an error of its own: one too long, a control character in it)."""
    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL:
        return False
    return parsed.scheme in ("http", "https") and bool(parsed.host)


def _check_url(url: str) -> str:
    if not is_http_url(url):
        raise NodeUnreachable(
            f"{url!r} is not a node URL; give one like {DEFAULT_NODE_URL} (--node or MEDCHAIN_NODE)"
        )
    return url.rstrip("/")


@functools.cache
def _contract_codes() -> frozenset[str]:
    """The codes of every contract refusal (`ContractError` and its kinds)."""
    found: set[str] = set()
    kinds: list[type[app.ContractError]] = [app.ContractError]
    while kinds:
        kind = kinds.pop()
        found.add(kind.code)
        kinds.extend(kind.__subclasses__())
    return frozenset(found)


def refused_call(tx: Tx, error: NodeError) -> MedchainError:
    """A contract's refusal of `tx` the node found by dry-running it at admission, as
    the TxFailed a refusal in a committed receipt raises (nothing was spent); any
    other refusal as it is."""
    if error.code not in _contract_codes():
        return error
    return TxFailed(Receipt(tx_id(tx), False, error.code, error.message))


def _error_code(response: httpx.Response) -> str | None:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None
    return code if isinstance(code, str) else None


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds the node asks to wait before submitting again (a full mempool)."""
    if response.status_code != 503:
        return None
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


def _block_ids(body: Mapping[str, Any]) -> dict[int, tuple[bytes, bytes | None]]:
    """Both shapes of POST /v1/chain/hashes: {"blocks": {h: {hash, state_root}}}, or
    the older {"hashes": {h: hash}}."""
    if "blocks" in body:
        return {
            int(h): (bytes.fromhex(b["hash"]), bytes.fromhex(b["state_root"]))
            for h, b in body["blocks"].items()
        }
    return {int(h): (bytes.fromhex(hex_id), None) for h, hex_id in body["hashes"].items()}


def _field(body: Mapping[str, Any], key: str, url: str) -> Any:
    try:
        return body[key]
    except (KeyError, TypeError):
        raise _bad_response(url, f"no {key!r} in its answer") from None


def _unhex(value: Any, url: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except (TypeError, ValueError):
        raise _bad_response(url, "malformed hex in its answer") from None


def _bad_response(url: str, what: str, status: int = 502) -> NodeError:
    return NodeError(
        "bad_response",
        f"{url} answered with {what}; check that --node points at a medchain node of a "
        "compatible version",
        status,
    )
