"""The network benchmark: a fresh devnet of node processes on this machine, driven
over HTTP by concurrent clients, measured like paper 000's application table.

Three phases, each `duration_s` long:

* **transactions** — every client keeps a window of signed transfers in flight
  (batched submission, round-robin over the nodes); sustained tx/s is counted from
  the committed blocks, commit latency from submission to the block that holds it;
* **record upload** — open loop at `rate` requests/s over all clients: one request
  (`POST /v1/records`) carries the encrypted FHIR record and its signed
  `records.create`; the node checks the body against the CID the transaction names,
  stores it, and admits the transaction (commit latency of the uploads is reported
  too);
* **record query** — open loop at `rate`: fetch a record version's ciphertext with the
  reader's key wrap, one signed read (the owner's), as the SDK does; check and decrypt it.

Payloads (sealed records, signed transactions) are prepared before each phase so the
figures measure the network, not the load generator's encryption. The generator runs
on the same machine as the nodes and competes with them for the CPU."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from medchain.app import (
    CreateRecordArgs,
    PurposeOfUse,
    RegisterArgs,
    Role,
    TransferArgs,
    new_record_id,
)
from medchain.bench._ceiling import ValidateCeiling, measure_ceiling, with_share
from medchain.bench._node_usage import NodeUsage, PhaseSampler, SampledNode
from medchain.client import canonical_json, open_sealed, seal, version_context
from medchain.crypto import (
    KEY_WRAP_HEADER,
    AccountKeys,
    address_from_public_key,
    format_address,
    load_keys,
    sign_read_request,
    signed_tx,
)
from medchain.node import (
    Devnet,
    DevnetProcesses,
    VerificationChain,
    free_port_base,
    local_devnet,
)
from medchain.offchain import cid_for, parse_cid
from medchain.types import Tx, tx_id

Progress = Callable[[str, int, int], None]
_POLL_S = 0.02
PRESIGN_TX_PER_S = 4_000
"""The rate transfers are signed ahead for when the validate ceiling is not measured
(with it, the ceiling: no run has come near it)."""


@dataclass(frozen=True)
class LatencySummary:
    requests: int
    errors: int
    throughput_per_s: float
    mean_ms: float
    min_ms: float
    max_ms: float
    p50_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float


@dataclass(frozen=True)
class NetworkBenchResult:
    consensus: str
    validators: int
    clients: int
    duration_s: float
    block_interval_ms: int
    sustained_tx_per_s: float
    tx_commit_latency: LatencySummary
    blocks: int
    mean_block_txs: float
    upload_rate_target: int
    upload: LatencySummary
    upload_commit_latency: LatencySummary
    query: LatencySummary
    errors: dict[str, int]
    """The commonest reasons requests failed, with counts."""
    anchoring: AnchoringCost | None = None
    """With --anchoring: what anchoring on the devnet's Ganache cost."""
    nodes: list[NodeUsage] = dataclasses.field(default_factory=list)
    """Each node process's CPU, peak memory and traffic, per phase."""
    ceiling: ValidateCeiling | None = None
    """The validate ceiling measured before the devnet started (None: --no-ceiling)."""


@dataclass(frozen=True)
class AnchoringCost:
    anchored_height: int
    """Highest height anchored by the end of the run."""
    anchors_sent: int
    """Anchor transactions the validators sent (one per checkpoint, in turn)."""
    anchoring_cpu_s: float
    """CPU the validators' anchoring threads used (Ethereum calls, passive checks)."""
    node_cpu_s: float
    """CPU the validator processes used in all (0 where /proc is not readable)."""
    submit_mean_ms: float
    """Mean time from a certified checkpoint to its anchor's receipt."""

    @property
    def cpu_share(self) -> float:
        """Anchoring's part of the validators' CPU: on a CPU-bound devnet, the
        throughput it costs."""
        return self.anchoring_cpu_s / self.node_cpu_s if self.node_cpu_s else 0.0

    @property
    def cpu_ms_per_anchor(self) -> float:
        return 1000 * self.anchoring_cpu_s / self.anchors_sent if self.anchors_sent else 0.0


def summarise(latencies_s: Sequence[float], errors: int, elapsed_s: float) -> LatencySummary:
    values = sorted(latencies_s)
    if not values:
        return LatencySummary(0, errors, 0.0, 0, 0, 0, 0, 0, 0, 0)

    def pct(p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] * 1000

    return LatencySummary(
        requests=len(values),
        errors=errors,
        throughput_per_s=len(values) / elapsed_s if elapsed_s > 0 else 0.0,
        mean_ms=sum(values) / len(values) * 1000,
        min_ms=values[0] * 1000,
        max_ms=values[-1] * 1000,
        p50_ms=pct(0.50),
        p90_ms=pct(0.90),
        p95_ms=pct(0.95),
        p99_ms=pct(0.99),
    )


class HttpError(Exception):
    """A request that failed to connect or answered with an error status."""


class ConnectionLost(HttpError):
    """The connection failed before an answer (refused, reset, closed, timed out): the
    request may or may not have reached the server."""


@dataclass(frozen=True)
class _Response:
    status_code: int
    content: bytes
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    """Lower-cased names."""

    def json(self) -> Any:
        return json.loads(self.content)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise HttpError(f"HTTP {self.status_code}: {self.text[:200]}")


class _Http:
    """The load generator's HTTP client: aiohttp, whose per-request CPU cost is a
    fraction of httpx's — the generator shares the machine with the nodes."""

    def __init__(self, connections: int) -> None:
        self._session = aiohttp.ClientSession(
            # idle connections closed before the server's keep-alive (5 s) would: a POST
            # on a connection the server just closed fails (a hub sends it again)
            connector=aiohttp.TCPConnector(limit=connections, keepalive_timeout=2.0),
            timeout=aiohttp.ClientTimeout(total=60),
        )

    async def close(self) -> None:
        await self._session.close()

    async def _call(self, method: str, url: str, **kwargs: Any) -> _Response:
        try:
            async with self._session.request(method, url, **kwargs) as response:
                headers = {k.lower(): v for k, v in response.headers.items()}
                return _Response(response.status, await response.read(), headers)
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
            raise ConnectionLost(f"{method} {url}: {exc!r}") from exc
        except aiohttp.ClientError as exc:
            raise HttpError(f"{method} {url}: {exc!r}") from exc

    async def get(self, url: str, headers: dict[str, str] | None = None) -> _Response:
        return await self._call("GET", url, headers=headers)

    async def post(self, url: str, json: object) -> _Response:
        return await self._call("POST", url, json=json)

    async def put(self, url: str, content: bytes) -> _Response:
        return await self._call("PUT", url, data=content)

    async def post_bytes(self, url: str, content: bytes) -> _Response:
        """POST a body that is already JSON."""
        headers = {"content-type": "application/json"}
        return await self._call("POST", url, data=content, headers=headers)


def _reason(exc: Exception) -> str:
    """What kind of failure: the node's error code, or the exception's type."""
    text = str(exc)
    marker = '"code":"'
    if marker in text:
        return "node refused: " + text.split(marker, 1)[1].split('"', 1)[0]
    return f"{type(exc).__name__}: {text[:120]}"


class _Watcher:
    """Follows the chain on one node: when each transaction was first seen committed."""

    def __init__(self, http: _Http, url: str) -> None:
        self.http, self.url = http, url
        self.committed: dict[bytes, float] = {}
        self.blocks: list[tuple[float, int]] = []
        self.proposals: list[tuple[float, str]] = []
        """When each block was seen, and its proposer's address."""
        self.height = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        """Polls the blocks' summaries (ids, not bodies): full blocks of a backlog of
        record uploads would load the node the benchmark measures."""
        while True:
            try:
                url = f"{self.url}/v1/blocks?from_height={self.height + 1}"
                summaries = (await self.http.get(url)).json()
                now = time.monotonic()
                for block in summaries["blocks"]:
                    self.seen(block, now)
                if summaries["blocks"] and summaries["latest"] > self.height:
                    continue  # more to fetch: a backlog is read without pausing
            except HttpError:
                pass
            await asyncio.sleep(_POLL_S)

    def seen(self, block: dict[str, Any], now: float) -> None:
        """Record one block summary (from `GET /v1/blocks`) seen at `now`."""
        for h in block["tx_hashes"]:
            self.committed.setdefault(bytes.fromhex(h), now)
        self.blocks.append((now, len(block["tx_hashes"])))
        self.proposals.append((now, block["proposer"]))
        self.height = block["height"]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def wait_for(self, hashes: Sequence[bytes], timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while not all(h in self.committed for h in hashes):
            if time.monotonic() > deadline:
                missing = sum(h not in self.committed for h in hashes)
                raise RuntimeError(f"{missing} transactions not committed in {timeout_s} s")
            await asyncio.sleep(_POLL_S)


class _Signer:
    def __init__(self, chain_id: str, fee: int) -> None:
        self.chain_id, self.fee = chain_id, fee
        self.nonces: dict[bytes, int] = {}

    def tx(self, keys: AccountKeys, method: str, args: object) -> Tx:
        nonce = self.nonces.get(keys.public_key, 0)
        self.nonces[keys.public_key] = nonce + 1
        return signed_tx(keys, self.chain_id, nonce, method, args, self.fee)


@dataclass(frozen=True, slots=True)
class _Wire:
    """A signed transaction as the batch endpoint takes it, with its id."""

    id: bytes
    hex: str

    @classmethod
    def of(cls, tx: Tx) -> _Wire:
        return cls(tx_id(tx), tx.encoded.hex())


async def _submit_batch(http: _Http, url: str, txs: Sequence[Tx]) -> list[bytes]:
    return await _submit_wires(http, url, [_Wire.of(t) for t in txs])


async def _submit_wires(http: _Http, url: str, wires: Sequence[_Wire]) -> list[bytes]:
    response = await http.post(f"{url}/v1/txs/batch", json={"txs": [w.hex for w in wires]})
    response.raise_for_status()
    results = response.json()["results"]
    return [w.id for w, r in zip(wires, results, strict=True) if r["accepted"]]


def _observation(patient: bytes, i: int) -> bytes:
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": f"Patient/{patient.hex()[:16]}"},
        "effectiveDateTime": "2026-11-21T10:00:00Z",
        "valueQuantity": {
            "value": 60 + i % 40,
            "unit": "beats/minute",
            "system": "http://unitsofmeasure.org",
            "code": "/min",
        },
    }
    return canonical_json(resource)


@dataclass
class _Upload:
    keys: AccountKeys
    record_id: bytes
    ciphertext: bytes
    tx: Tx


class NetworkBench:
    def __init__(
        self,
        *,
        validators: int,
        consensus: str,
        clients: int,
        duration_s: float,
        rate: int,
        window: int,
        block_interval_ms: int,
        progress: Progress,
        anchoring: bool = False,
        ceiling: bool = True,
    ) -> None:
        self.anchoring, self.measure_ceiling = anchoring, ceiling
        self.validators, self.consensus, self.clients = validators, consensus, clients
        self.duration_s, self.rate, self.window = duration_s, rate, window
        self.block_interval_ms = block_interval_ms
        self.progress = progress
        self.error_samples: dict[str, int] = {}
        """Why requests failed, with how often (the first 160 characters of each)."""

    # -- set-up -----------------------------------------------------------------------

    async def _prepare_accounts(self) -> list[AccountKeys]:
        """Fund and register one patient account per client."""
        accounts = [AccountKeys.generate() for _ in range(self.clients)]
        funding = [
            self.signer.tx(self.faucet, "accounts.transfer", TransferArgs(a.address, 10**12, ""))
            for a in accounts
        ]
        await self.watcher.wait_for(await _submit_batch(self.http, self.urls[0], funding))
        registrations = [
            self.signer.tx(
                a,
                "registry.register",
                RegisterArgs(Role.PATIENT, "", a.encryption_public_key, b"", a.ring_public_key),
            )
            for a in accounts
        ]
        await self.watcher.wait_for(await _submit_batch(self.http, self.urls[0], registrations))
        return accounts

    # -- phase 1: sustained transactions ----------------------------------------------

    def _sign_transfers(self, accounts: list[AccountKeys], rate_tx_per_s: float) -> None:
        """Sign each client's transfers for the phase before it starts, enough for
        `rate_tx_per_s` over the phase: signing them as it runs took about a tenth of
        a core from the nodes the phase measures. A client that outruns them, or
        whose nonce had to be read again from the chain, signs the rest as it goes."""
        per_client = math.ceil(rate_tx_per_s * self.duration_s / len(accounts)) + self.window
        total = per_client * len(accounts)
        self.transfers: dict[bytes, collections.deque[_Wire]] = {}
        for n, keys in enumerate(accounts):
            self.transfers[keys.public_key] = collections.deque(
                _Wire.of(self._transfer(keys)) for _ in range(per_client)
            )
            self.progress("signing transfers", (n + 1) * per_client, total)

    def _transfer(self, keys: AccountKeys) -> Tx:
        return self.signer.tx(keys, "accounts.transfer", TransferArgs(keys.address, 1, ""))

    def _next_transfers(self, keys: AccountKeys, count: int) -> list[_Wire]:
        signed = self.transfers.get(keys.public_key) or collections.deque()
        taken = [signed.popleft() for _ in range(min(count, len(signed)))]
        return taken + [_Wire.of(self._transfer(keys)) for _ in range(count - len(taken))]

    async def _tx_client(self, i: int, keys: AccountKeys, deadline: float) -> None:
        url = self.urls[i % len(self.urls)]
        outstanding: list[bytes] = []
        batch = max(1, min(50, self.window // 2))
        seen_height = -1
        while time.monotonic() < deadline:
            if seen_height != self.watcher.height:  # only a new block commits any
                seen_height = self.watcher.height
                outstanding = [h for h in outstanding if h not in self.watcher.committed]
            if len(outstanding) + batch > self.window:
                await asyncio.sleep(_POLL_S)
                continue
            wires = self._next_transfers(keys, batch)
            sent_at = time.monotonic()
            try:
                accepted = await _submit_wires(self.http, url, wires)
            except HttpError:
                accepted = []
            if len(accepted) < len(wires):
                # refused ones (mempool full): resynchronise the nonce with the chain;
                # the transfers signed ahead carry nonces that no longer follow
                self.transfers.pop(keys.public_key, None)
                await self._resync_nonce(url, keys, outstanding + accepted)
            for h in accepted:
                self.submitted[h] = sent_at
            outstanding += accepted

    async def _resync_nonce(self, url: str, keys: AccountKeys, pending: list[bytes]) -> None:
        await asyncio.sleep(0.2)
        address = format_address(keys.address)
        committed = (await self.http.get(f"{url}/v1/accounts/{address}")).json()["nonce"]
        still = [h for h in pending if h not in self.watcher.committed]
        self.signer.nonces[keys.public_key] = int(committed) + len(still)

    async def _transactions(self, accounts: list[AccountKeys]) -> tuple[float, LatencySummary]:
        self.submitted: dict[bytes, float] = {}
        start = time.monotonic()
        deadline = start + self.duration_s
        ticker = asyncio.create_task(self._tick("transactions", start, deadline))
        await asyncio.gather(*(self._tx_client(i, k, deadline) for i, k in enumerate(accounts)))
        ticker.cancel()
        end = time.monotonic()
        warm = start + min(2.0, self.duration_s / 5)
        in_window = [n for t, n in self.watcher.blocks if warm <= t <= end]
        rate = sum(in_window) / (end - warm)
        latencies = [
            self.watcher.committed[h] - t
            for h, t in self.submitted.items()
            if h in self.watcher.committed and warm <= t
        ]
        return rate, summarise(latencies, 0, end - warm)

    # -- phases 2 and 3: record upload and query --------------------------------------

    def _prepare_uploads(self, accounts: list[AccountKeys]) -> list[list[_Upload]]:
        per_client = int(self.rate * self.duration_s / self.clients) + 2
        uploads: list[list[_Upload]] = []
        self._client_of = {keys.public_key: n for n, keys in enumerate(accounts)}
        for n, keys in enumerate(accounts):
            mine = []
            for i in range(per_client):
                nonce = self.signer.nonces.get(keys.public_key, 0)
                record_id = new_record_id(keys.address, nonce)
                sealed = seal(
                    _observation(keys.address, i),
                    version_context(record_id, 1),
                    {keys.address: keys.encryption_public_key},
                )
                args = CreateRecordArgs(
                    keys.address,
                    "Observation",
                    cid_for(sealed.ciphertext),
                    sealed.ciphertext_hash,
                    sealed.wraps,
                )
                tx = self.signer.tx(keys, "records.create", args)
                mine.append(_Upload(keys, record_id, sealed.ciphertext, tx))
            uploads.append(mine)
            self.progress("sealing records", n + 1, len(accounts))
        return uploads

    async def _paced(
        self,
        name: str,
        work: Callable[[int, int], object],
        count_per_client: int,
    ) -> tuple[list[float], int, float]:
        """Open loop: each client issues a request every clients/rate seconds (or as
        soon as its previous one ends, if that is later)."""
        interval = self.clients / self.rate
        latencies: list[float] = []
        errors = 0
        start = time.monotonic()
        deadline = start + self.duration_s

        async def client(c: int) -> None:
            nonlocal errors
            next_at = start + random.random() * interval
            for i in range(count_per_client):
                now = time.monotonic()
                if now >= deadline:
                    return
                if next_at > now:
                    await asyncio.sleep(next_at - now)
                began = time.monotonic()
                try:
                    await work(c, i)  # type: ignore[misc]
                    latencies.append(time.monotonic() - began)
                except (HttpError, RuntimeError, ValueError) as exc:
                    errors += 1
                    reason = _reason(exc)
                    self.error_samples[reason] = self.error_samples.get(reason, 0) + 1
                next_at += interval

        ticker = asyncio.create_task(self._tick(name, start, deadline))
        await asyncio.gather(*(client(c) for c in range(self.clients)))
        ticker.cancel()
        return latencies, errors, time.monotonic() - start

    async def _uploads(
        self, uploads: list[list[_Upload]]
    ) -> tuple[LatencySummary, LatencySummary, list[_Upload]]:
        done: list[_Upload] = []
        sent_at: dict[bytes, float] = {}

        async def upload(c: int, i: int) -> None:
            item = uploads[c][i]
            url = self.urls[c % len(self.urls)]
            began = time.monotonic()
            response = await self.http.post(
                f"{url}/v1/records",
                json={"tx": item.tx.encoded.hex(), "ciphertext": item.ciphertext.hex()},
            )
            if response.status_code != 202:
                raise RuntimeError(response.text)
            sent_at[tx_id(item.tx)] = began
            done.append(item)

        latencies, errors, elapsed = await self._paced("record upload", upload, len(uploads[0]))
        hashes = list(sent_at)
        with contextlib.suppress(RuntimeError):
            await self.watcher.wait_for(hashes, 60)
        commits = [
            self.watcher.committed[h] - sent_at[h] for h in hashes if h in self.watcher.committed
        ]
        return (
            summarise(latencies, errors, elapsed),
            summarise(commits, len(hashes) - len(commits), elapsed),
            done,
        )

    async def _queries(self, records: list[_Upload]) -> LatencySummary:
        """Each client reads its own records back from the node it uploaded them to
        (ciphertexts stay on the uploading node; fetching from peers is not measured)."""
        by_client: dict[bytes, list[_Upload]] = {}
        for item in records:
            by_client.setdefault(item.keys.public_key, []).append(item)
        owners = list(by_client)
        rng = random.Random(7)
        chain_id, own = self.signer.chain_id, PurposeOfUse.PATIENT_REQUEST.value

        def signed(keys: AccountKeys, target: str) -> dict[str, str]:
            """Reads of wraps and ciphertexts are signed, as every client's are."""
            now = time.time_ns() // 1_000_000
            return {"authorization": sign_read_request(keys, chain_id, "GET", target, now, own)}

        async def query(c: int, _: int) -> None:
            mine = by_client.get(owners[c % len(owners)], [])
            item = rng.choice(mine)
            url = self.urls[self._client_of[item.keys.public_key] % len(self.urls)]
            path = f"/v1/records/{item.record_id.hex()}/versions/1/body"
            blob = await self.http.get(f"{url}{path}", headers=signed(item.keys, path))
            if blob.status_code != 200:
                raise RuntimeError(f"body of {item.record_id.hex()}: {blob.status_code}")
            cid = blob.headers.get("etag", "").strip('"')
            if hashlib.sha256(blob.content).digest() != parse_cid(cid):
                raise RuntimeError(f"body of {item.record_id.hex()} does not match its CID")
            wrap = blob.headers[KEY_WRAP_HEADER.lower()]
            open_sealed(
                item.keys,
                bytes.fromhex(wrap),
                blob.content,
                version_context(item.record_id, 1),
            )

        per_client = int(self.rate * self.duration_s / self.clients) + 2
        latencies, errors, elapsed = await self._paced("record query", query, per_client)
        return summarise(latencies, errors, elapsed)

    async def _tick(self, stage: str, start: float, deadline: float) -> None:
        total = int(deadline - start)
        while True:
            self.progress(stage, min(total, int(time.monotonic() - start)), total)
            await asyncio.sleep(0.5)

    # -- the whole run ----------------------------------------------------------------

    async def run(self, home: Path) -> NetworkBenchResult:
        devnet = local_devnet(
            home,
            self.validators,
            self.consensus,
            chain_id="medchain-bench",
            block_interval_ms=self.block_interval_ms,
            verification=VerificationChain(free_port_base(1)) if self.anchoring else None,
        )
        anchoring: AnchoringCost | None = None
        ceiling = measure_ceiling(self.validators, self.progress) if self.measure_ceiling else None
        with DevnetProcesses(devnet) as nodes:
            nodes.start_nodes()
            http = _Http(connections=self.clients * 2)
            try:
                self.http = http
                self.urls = [n.api_url for n in devnet.nodes]
                await asyncio.to_thread(nodes.wait_healthy)
                genesis = devnet.genesis()
                self.signer = _Signer(genesis.chain_id, genesis.params.min_fee)
                self.faucet = load_keys(devnet.faucet_key)
                self.watcher = _Watcher(http, self.urls[0])
                self.watcher.start()
                accounts = await self._prepare_accounts()
                self._sign_transfers(
                    accounts, ceiling.ceiling_tx_per_s if ceiling else PRESIGN_TX_PER_S
                )
                sampler = PhaseSampler(_sampled_nodes(devnet, nodes), self._read_metrics)
                async with sampler.phase("transactions"):
                    tx_rate, tx_latency = await self._transactions(accounts)
                blocks = [n for _, n in self.watcher.blocks]
                await self._settle(accounts)
                uploads = self._prepare_uploads(accounts)
                async with sampler.phase("record upload"):
                    upload, upload_commit, done = await self._uploads(uploads)
                async with sampler.phase("record query"):
                    query = await self._queries(done) if done else summarise([], 0, 0)
                await self.watcher.stop()
                usage = sampler.usage(self.watcher.proposals)
                if self.anchoring:
                    anchoring = await self._anchoring_cost([c.pid for c in nodes.children.values()])
            finally:
                await http.close()
        bench_errors = self.error_samples
        return NetworkBenchResult(
            consensus=self.consensus,
            validators=self.validators,
            clients=self.clients,
            duration_s=self.duration_s,
            block_interval_ms=self.block_interval_ms,
            sustained_tx_per_s=tx_rate,
            tx_commit_latency=tx_latency,
            blocks=len(blocks),
            mean_block_txs=sum(blocks) / len(blocks) if blocks else 0.0,
            upload_rate_target=self.rate,
            upload=upload,
            upload_commit_latency=upload_commit,
            errors=dict(sorted(bench_errors.items(), key=lambda kv: -kv[1])[:10]),
            query=query,
            anchoring=anchoring,
            nodes=usage,
            ceiling=None if ceiling is None else with_share(ceiling, tx_rate),
        )

    async def _read_metrics(self, url: str) -> str:
        response = await self.http.get(f"{url}/metrics")
        response.raise_for_status()
        return response.text

    async def _anchoring_cost(self, pids: list[int]) -> AnchoringCost:
        """Read from each validator's /metrics and /proc before the nodes stop."""
        cpu = sent = 0.0
        node_cpu = 0.0
        submit_s = submit_count = 0.0
        for url, pid in zip(self.urls, pids, strict=True):
            text = (await self.http.get(f"{url}/metrics")).text
            cpu += _metric(text, "medchain_anchor_cpu_seconds_total")
            sent += _metric(text, "medchain_anchors_sent_total")
            submit_count += _metric(text, "medchain_anchor_submit_seconds_count")
            submit_s += _metric(text, "medchain_anchor_submit_seconds_sum")
            node_cpu += _process_cpu_s(pid)
        status = (await self.http.get(f"{self.urls[0]}/v1/anchoring")).json()
        return AnchoringCost(
            anchored_height=int(status["anchored_height"]),
            anchors_sent=int(sent),
            anchoring_cpu_s=cpu,
            node_cpu_s=node_cpu,
            submit_mean_ms=1000 * submit_s / submit_count if submit_count else 0.0,
        )

    async def _settle(self, accounts: list[AccountKeys]) -> None:
        """Let the transaction phase drain, then take every client's nonce from the chain."""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = (await self.http.get(f"{self.urls[0]}/v1/status")).json()
            if status["mempool_txs"] == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(self.block_interval_ms / 1000 * 2)
        for keys in accounts:
            address = format_address(keys.address)
            account = (await self.http.get(f"{self.urls[0]}/v1/accounts/{address}")).json()
            self.signer.nonces[keys.public_key] = int(account["nonce"])


def run_network_bench(
    *,
    validators: int = 4,
    consensus: str = "pbft",
    clients: int = 100,
    duration_s: float = 30,
    rate: int = 500,
    window: int = 60,
    block_interval_ms: int = 500,
    progress: Progress | None = None,
    anchoring: bool = False,
    ceiling: bool = True,
) -> NetworkBenchResult:
    """`ceiling`: measure the validate ceiling first (a few seconds, see _ceiling.py)."""
    bench = NetworkBench(
        validators=validators,
        consensus=consensus,
        clients=clients,
        duration_s=duration_s,
        rate=rate,
        window=window,
        block_interval_ms=block_interval_ms,
        progress=progress or (lambda _s, _d, _t: None),
        anchoring=anchoring,
        ceiling=ceiling,
    )
    with tempfile.TemporaryDirectory(prefix="medchain-bench-") as tmp:
        return asyncio.run(bench.run(Path(tmp)))


def _sampled_nodes(devnet: Devnet, nodes: DevnetProcesses) -> list[SampledNode]:
    """Every node process, with the validator address its blocks name it by."""
    keys = {v.name: v.public_key for v in devnet.genesis().validators}
    return [
        SampledNode(
            n.name,
            nodes.children[n.name].pid,
            n.api_url,
            format_address(address_from_public_key(keys[n.name])) if n.name in keys else "",
        )
        for n in devnet.nodes
    ]


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _process_tree_cpu_s(pid: int) -> float:
    """CPU seconds of a process and every process below it (e.g. a gateway's intake
    workers), from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += _process_cpu_s(current)
        todo.extend(children.get(current, []))
    return total


def result_json(result: NetworkBenchResult) -> str:
    return json.dumps(dataclasses.asdict(result), indent=2)
