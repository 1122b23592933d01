"""What forged anonymous transactions cost a node: the flood benchmark.

A forged anonymous transaction is cheap to make (random bytes of the right shape) and
costs whoever checks it a full ring verification (about 27 ms for 64 members on one
core); it pays no fee. Two measures:

* `run_forged_cost`, in one process: forged 64-member ring transactions admitted the
  way the node did before (checked on the thread that runs the event loop) and the way
  it does now (`Admission`: checked in the verifier's workers), with the CPU each took
  on the loop's thread and in all;
* `run_flood_bench`, on a devnet of node processes: attacker processes, from their own
  loopback address, send batches of forged anonymous transactions for `duration_s`
  without pause, ignoring Retry-After, while this process reads `/v1/status` of the
  flooded node every 50 ms and an honest client submits transfers to it.

Each attacker runs in a process of its own (`start_attacker`), so the flood test
drives the same code."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx

from medchain.app import (
    AnonSubmitArgs,
    KeyWrap,
    OpenScopeArgs,
    OrgKind,
    RegisterArgs,
    Role,
    TransferArgs,
)
from medchain.bench._devnet_orgs import founding_key
from medchain.client import genesis_organisation
from medchain.crypto import (
    WRAPPED_KEY_SIZE,
    AccountKeys,
    RingSignature,
    load_keys,
    ring_public,
    ring_secret,
    sha256,
    signed_tx,
)
from medchain.node import ORG_KEY_FILE, DevnetProcesses, local_devnet
from medchain.offchain import cid_for
from medchain.types import Tx, encode, tx_id

FLOOD_SCOPE = "flood-bench"
ATTACKER_ADDRESS = "127.0.0.2"
"""The attackers' source address: on Linux every 127/8 address is the loopback, and
the node tells clients apart by address."""


@dataclass(frozen=True)
class FloodScope:
    """An open scope and a ring of registered members with ring keys: what a forged
    contribution names so that it reaches the ring check."""

    chain_id: str
    name: str
    ring: tuple[bytes, ...]
    recipient: bytes


def forged_anonymous_tx(scope: FloodScope) -> Tx:
    """A contribution with a well-formed ring signature nobody made: canonical random
    scalars and a random key image, so every forgery is new and reaches the ring check."""
    cid_bytes = secrets.token_bytes(16)
    args = AnonSubmitArgs(
        scope.name,
        scope.ring,
        cid_for(cid_bytes),
        sha256(cid_bytes),
        (KeyWrap(scope.recipient, secrets.token_bytes(WRAPPED_KEY_SIZE)),),
    )
    signature = RingSignature(
        key_image=ring_public(_random_scalar()),
        c1=_random_scalar(),
        responses=tuple(_random_scalar() for _ in scope.ring),
    )
    return Tx(scope.chain_id, 0, b"", 0, "anon.submit", encode(args), encode(signature))


def _random_scalar() -> bytes:
    return ring_secret(secrets.token_bytes(32))


# -- setting up a scope on a running devnet -------------------------------------------


def open_flood_scope(
    http: httpx.Client,
    url: str,
    faucet: AccountKeys,
    institution: AccountKeys,
    ring_size: int,
    timeout_s: float = 120,
) -> FloodScope:
    """Register `ring_size` patients with ring keys and have `institution` (the account
    of a member organisation: only those open scopes) open a scope they may contribute
    to; returns once it is committed."""
    genesis = http.get(f"{url}/v1/genesis").raise_for_status().json()
    chain_id, min_fee = genesis["chain_id"], int(genesis["params"]["min_fee"])
    members = [AccountKeys.generate() for _ in range(ring_size)]
    nonce_of = f"{url}/v1/accounts/{institution.address_text}"
    scope_nonce = int(http.get(nonce_of).raise_for_status().json()["nonce"])
    if min_fee:
        nonce = int(http.get(f"{url}/v1/accounts/{faucet.address_text}").json()["nonce"])
        funding = [
            signed_tx(
                faucet,
                chain_id,
                nonce + i,
                "accounts.transfer",
                TransferArgs(k.address, 10 * min_fee, ""),
                min_fee,
            )
            for i, k in enumerate([*members, institution])
        ]
        _submit_and_wait(http, url, funding, timeout_s)
    txs = [
        signed_tx(
            k,
            chain_id,
            0,
            "registry.register",
            RegisterArgs(Role.PATIENT, "", k.encryption_public_key, b"", k.ring_public_key),
            min_fee,
        )
        for k in members
    ]
    _submit_and_wait(http, url, txs, timeout_s)  # the ring, before the scope is opened
    txs = [
        signed_tx(
            institution,
            chain_id,
            scope_nonce,
            "anon.open_scope",
            OpenScopeArgs(FLOOD_SCOPE, Role.PATIENT, 2),
            min_fee,
        )
    ]
    _submit_and_wait(http, url, txs, timeout_s)
    ring = tuple(sorted(k.address for k in members))
    return FloodScope(chain_id, FLOOD_SCOPE, ring, institution.address)


def _submit_and_wait(http: httpx.Client, url: str, txs: Sequence[Tx], timeout_s: float) -> None:
    body = {"txs": [tx.encoded.hex() for tx in txs]}
    results = http.post(f"{url}/v1/txs/batch", json=body).raise_for_status().json()["results"]
    refused = [r["error"] for r in results if not r["accepted"]]
    if refused:
        raise RuntimeError(f"the node refused the set-up transactions: {refused[:3]}")
    deadline = time.monotonic() + timeout_s
    for tx in txs:
        while not _committed(http, url, tx_id(tx)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"set-up transactions not committed in {timeout_s} s")
            time.sleep(0.1)


def _committed(http: httpx.Client, url: str, tx_hash: bytes) -> bool:
    response = http.get(f"{url}/v1/txs/{tx_hash.hex()}")
    return response.status_code == 200 and response.json()["status"] == "committed"


# -- the attacker ---------------------------------------------------------------------


@dataclass
class AttackTally:
    """What one attacker's requests got."""

    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    """HTTP status -> requests ("error" for a failed connection)."""
    forged_sent: int = 0
    """Forged transactions in requests the node read (not turned away by the gate)."""
    forged_verified: int = 0
    """Forged transactions refused as invalid_signature: those the node verified."""

    def add(self, other: AttackTally) -> None:
        self.requests += other.requests
        self.forged_sent += other.forged_sent
        self.forged_verified += other.forged_verified
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count


def attack(
    url: str, scope: FloodScope, duration_s: float, batch: int, local_address: str
) -> AttackTally:
    """Send batches of `batch` forged transactions from `local_address` for
    `duration_s`, as fast as the node answers, ignoring Retry-After."""
    tally = AttackTally()
    statuses: Counter[str] = Counter()
    deadline = time.monotonic() + duration_s
    transport = httpx.HTTPTransport(local_address=local_address)
    with httpx.Client(transport=transport, timeout=30.0) as http:
        body = _forged_batch(scope, batch)
        while time.monotonic() < deadline:
            tally.requests += 1
            try:
                response = http.post(f"{url}/v1/txs/batch", content=body, headers=_JSON)
            except httpx.HTTPError:
                statuses["error"] += 1
                time.sleep(0.01)
                continue
            statuses[str(response.status_code)] += 1
            if response.status_code == 200:
                results = response.json()["results"]
                tally.forged_sent += len(results)
                tally.forged_verified += sum(
                    1 for r in results if r["error"] and r["error"]["code"] == "invalid_signature"
                )
            elif response.status_code == 400:
                tally.forged_sent += batch
            if response.status_code in (200, 400):
                body = _forged_batch(scope, batch)  # read: the next ones must be new
    tally.statuses = dict(statuses)
    return tally


_JSON = {"content-type": "application/json"}


def _forged_batch(scope: FloodScope, batch: int) -> bytes:
    txs = [forged_anonymous_tx(scope).encoded.hex() for _ in range(batch)]
    return json.dumps({"txs": txs}).encode()


def start_attacker(
    url: str, scope: FloodScope, duration_s: float, batch: int, local_address: str
) -> subprocess.Popen[bytes]:
    """`attack` in a process of its own (so its CPU use does not slow whoever measures
    the node); read its tally with `attacker_tally`."""
    spec = {
        "url": url,
        "scope": {
            "chain_id": scope.chain_id,
            "name": scope.name,
            "ring": [m.hex() for m in scope.ring],
            "recipient": scope.recipient.hex(),
        },
        "duration_s": duration_s,
        "batch": batch,
        "local_address": local_address,
    }
    code = "import sys; from medchain.bench._flood import attacker_main; attacker_main(sys.argv[1])"
    return subprocess.Popen([sys.executable, "-c", code, json.dumps(spec)], stdout=subprocess.PIPE)


def attacker_tally(process: subprocess.Popen[bytes], timeout_s: float) -> AttackTally:
    out, _ = process.communicate(timeout=timeout_s)
    if process.returncode != 0:
        raise RuntimeError(f"an attacker process failed (exit {process.returncode})")
    return AttackTally(**json.loads(out))


def attacker_main(spec_json: str) -> None:
    """The attacker process: `attack` as `spec_json` says, its tally printed as JSON."""
    spec = json.loads(spec_json)
    raw = spec["scope"]
    scope = FloodScope(
        raw["chain_id"],
        raw["name"],
        tuple(bytes.fromhex(m) for m in raw["ring"]),
        bytes.fromhex(raw["recipient"]),
    )
    tally = attack(spec["url"], scope, spec["duration_s"], spec["batch"], spec["local_address"])
    print(json.dumps(asdict(tally)))


# -- probing the flooded node ---------------------------------------------------------


class StatusProbe:
    """GET /v1/status every `interval_s`, on schedule whether or not earlier answers came
    (open loop), in a thread of its own. Each latency runs from when the request was
    due, so a node that stalls for a second shows a second's worth of slow answers, not
    one (no coordinated omission)."""

    def __init__(self, url: str, interval_s: float = 0.05) -> None:
        self.url = url
        self.interval_s = interval_s
        self.latencies_s: list[float] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    async def _run(self) -> None:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as http:
            tasks = set()
            due = time.perf_counter()
            while not self._stop.is_set():
                task = asyncio.ensure_future(self._one(http, due))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                due += self.interval_s
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _one(self, http: httpx.AsyncClient, due: float) -> None:
        try:
            (await http.get(f"{self.url}/v1/status")).raise_for_status()
            self.latencies_s.append(time.perf_counter() - due)
        except httpx.HTTPError:
            self.failures += 1

    def percentile_ms(self, q: float) -> float:
        if not self.latencies_s:
            return float("nan")
        ordered = sorted(self.latencies_s)
        return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# -- the devnet benchmark -------------------------------------------------------------


@dataclass(frozen=True)
class FloodResult:
    validators: int
    ring_size: int
    duration_s: float
    attackers: int
    batch: int
    attack: AttackTally
    node_cpu_s: float
    """CPU the flooded node's process used during the flood."""
    status_requests: int
    status_failures: int
    status_p50_ms: float
    status_p95_ms: float
    status_max_ms: float
    blocks: int
    """Blocks committed during the flood."""
    honest_sent: int
    honest_submit_p50_ms: float
    """POST /v1/txs of an honest transfer, until the node answered it pending."""
    honest_submit_max_ms: float
    honest_committed: int
    honest_commit_p50_ms: float
    honest_commit_max_ms: float


def run_flood_bench(
    *,
    validators: int = 1,
    duration_s: float = 20,
    attackers: int = 2,
    batch: int = 16,
    ring_size: int = 64,
    honest_per_s: float = 5,
    block_interval_ms: int = 250,
) -> FloodResult:
    with tempfile.TemporaryDirectory(prefix="medchain-flood-") as tmp:
        devnet = local_devnet(
            Path(tmp),
            validators,
            "pbft",
            chain_id="medchain-flood",
            block_interval_ms=block_interval_ms,
        )
        with DevnetProcesses(devnet) as nodes:
            first = nodes.start_nodes()[0]
            nodes.wait_healthy()
            url = str(devnet.nodes[0].api_url)
            with httpx.Client(timeout=30.0) as http:
                faucet = load_keys(devnet.faucet_key)
                scope = open_flood_scope(
                    http, url, faucet, founding_key(devnet, ORG_KEY_FILE), ring_size
                )
                return _flood(
                    http,
                    url,
                    first.pid,
                    faucet,
                    scope,
                    validators=validators,
                    duration_s=duration_s,
                    attackers=attackers,
                    batch=batch,
                    honest_per_s=honest_per_s,
                    min_fee=devnet.genesis().params.min_fee,
                )


def _flood(
    http: httpx.Client,
    url: str,
    node_pid: int,
    faucet: AccountKeys,
    scope: FloodScope,
    *,
    validators: int,
    duration_s: float,
    attackers: int,
    batch: int,
    honest_per_s: float,
    min_fee: int,
) -> FloodResult:
    nonce = int(http.get(f"{url}/v1/accounts/{faucet.address_text}").json()["nonce"])
    height = int(http.get(f"{url}/v1/status").json()["height"])
    cpu_before = process_cpu_s(node_pid)
    probe = StatusProbe(url)
    probe.start()
    flood = [
        start_attacker(url, scope, duration_s, batch, ATTACKER_ADDRESS) for _ in range(attackers)
    ]
    honest: dict[bytes, int] = {}
    submits: list[float] = []
    deadline = time.monotonic() + duration_s
    while time.monotonic() < deadline:
        tx = signed_tx(
            faucet,
            scope.chain_id,
            nonce,
            "accounts.transfer",
            TransferArgs(faucet.address, 1, ""),
            min_fee,
        )
        sent_ms = int(time.time() * 1000)
        began = time.perf_counter()
        with contextlib.suppress(httpx.HTTPError):
            if http.post(f"{url}/v1/txs", json={"tx": tx.encoded.hex()}).status_code < 300:
                honest[tx_id(tx)] = sent_ms
                submits.append(1000 * (time.perf_counter() - began))
                nonce += 1
        time.sleep(max(0.0, 1 / honest_per_s - (time.perf_counter() - began)))
    tally = AttackTally()
    for process in flood:
        tally.add(attacker_tally(process, 120))
    probe.stop()
    cpu = process_cpu_s(node_pid) - cpu_before
    blocks = int(http.get(f"{url}/v1/status").json()["height"]) - height
    latencies = _honest_latencies_ms(http, url, honest)
    return FloodResult(
        validators=validators,
        ring_size=len(scope.ring),
        duration_s=duration_s,
        attackers=attackers,
        batch=batch,
        attack=tally,
        node_cpu_s=cpu,
        status_requests=len(probe.latencies_s),
        status_failures=probe.failures,
        status_p50_ms=probe.percentile_ms(0.5),
        status_p95_ms=probe.percentile_ms(0.95),
        status_max_ms=probe.percentile_ms(1.0),
        blocks=blocks,
        honest_sent=len(honest),
        honest_submit_p50_ms=statistics.median(submits) if submits else float("nan"),
        honest_submit_max_ms=max(submits, default=float("nan")),
        honest_committed=len(latencies),
        honest_commit_p50_ms=statistics.median(latencies) if latencies else float("nan"),
        honest_commit_max_ms=max(latencies, default=float("nan")),
    )


def _honest_latencies_ms(http: httpx.Client, url: str, sent: dict[bytes, int]) -> list[float]:
    """From submission to the time of the block holding it, for those committed within
    30 s of the flood's end."""
    deadline = time.monotonic() + 30
    latencies: list[float] = []
    block_times: dict[int, int] = {}
    for tx_hash, sent_ms in sent.items():
        while True:
            answer = http.get(f"{url}/v1/txs/{tx_hash.hex()}").json()
            if answer.get("status") == "committed" or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        if answer.get("status") != "committed":
            continue
        height = int(answer["height"])
        if height not in block_times:  # its summary: the time, not every body
            page = http.get(f"{url}/v1/blocks", params={"from_height": height, "limit": 1})
            block_times[height] = int(page.json()["blocks"][0]["time_ms"])
        latencies.append(float(block_times[height] - sent_ms))
    return latencies


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its threads, from /proc (Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# -- in one process: the loop's cost of a forged transaction, before and after ----------


@dataclass(frozen=True)
class ForgedCost:
    ring_size: int
    forged: int
    workers: int
    before_loop_ms: float
    """CPU of the loop's thread per forged transaction, checked there (before)."""
    before_total_ms: float
    after_loop_ms: float
    """CPU of the loop's thread per forged transaction with the verifier's workers."""
    after_total_ms: float
    """CPU of the whole process (loop and workers) per forged transaction."""
    client_forged_per_s: float
    """Forged transactions one client address can make a node verify a second, at the
    default budget, once its burst is spent."""


def run_forged_cost(ring_size: int = 64, forged: int = 100, workers: int = 1) -> ForgedCost:
    """Admit `forged` forged transactions both ways on a chain in memory."""
    # here, not at the top: `run_flood_bench` also runs against nodes of releases
    # without these (docs/BENCHMARKS.md)
    from medchain.app import RING_MEMBER_COST, InvalidSignature, Ledger, SignatureCache
    from medchain.mempool import Mempool
    from medchain.node import NODE, Admission, AdmissionConfig, LocalChain, Verifier
    from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator

    validator, institution = AccountKeys.generate(), AccountKeys.generate()
    lab = genesis_organisation(
        "forged-lab", "Lab", OrgKind.RESEARCH, [AccountKeys.generate()], institution
    )
    genesis = Genesis(
        "medchain-forged",
        1_700_000_000_000,
        ChainParams(),
        (Allocation(validator.address, 10**9),),
        (GenesisValidator(validator.public_key, "v0", organisation=lab.org_id),),
        organisations=(lab,),
    )
    local = LocalChain.in_memory(genesis, validator)
    members = [AccountKeys.generate() for _ in range(ring_size)]
    for keys in members:
        args = RegisterArgs(Role.PATIENT, "", keys.encryption_public_key, b"", keys.ring_public_key)
        local.submit(signed_tx(keys, genesis.chain_id, 0, "registry.register", args))
    scope_args = OpenScopeArgs(FLOOD_SCOPE, Role.PATIENT, 2)
    local.submit(signed_tx(institution, genesis.chain_id, 0, "anon.open_scope", scope_args))
    scope = FloodScope(
        genesis.chain_id,
        FLOOD_SCOPE,
        tuple(sorted(k.address for k in members)),
        institution.address,
    )
    state = local.ledger.state.committed()

    def mempool() -> Mempool:
        return Mempool(Ledger(genesis, state, verified=SignatureCache()))

    before = mempool()
    txs = [forged_anonymous_tx(scope) for _ in range(forged)]
    loop_began, total_began = time.thread_time(), time.process_time()
    for tx in txs:  # what the node did on its loop: Mempool.add checks the ring there
        with contextlib.suppress(InvalidSignature):
            before.add(tx)
    before_loop = time.thread_time() - loop_began
    before_total = time.process_time() - total_began

    after = mempool()
    txs = [forged_anonymous_tx(scope) for _ in range(forged)]

    async def admit() -> tuple[float, float]:
        assert after.ledger.verified is not None
        verifier = Verifier(after.ledger.verified, workers)
        admission = Admission(after, verifier, AdmissionConfig())
        loop_began, total_began = time.thread_time(), time.process_time()
        for start in range(0, len(txs), 16):
            results = await admission.admit(txs[start : start + 16], NODE)
            assert all(isinstance(r, InvalidSignature) for r in results)
        spent = time.thread_time() - loop_began, time.process_time() - total_began
        await verifier.close()
        return spent

    after_loop, after_total = asyncio.run(admit())
    rate = AdmissionConfig().client_rate / (RING_MEMBER_COST * ring_size)
    return ForgedCost(
        ring_size=ring_size,
        forged=forged,
        workers=workers,
        before_loop_ms=1000 * before_loop / forged,
        before_total_ms=1000 * before_total / forged,
        after_loop_ms=1000 * after_loop / forged,
        after_total_ms=1000 * after_total / forged,
        client_forged_per_s=rate,
    )


def result_json(result: FloodResult | ForgedCost) -> str:
    return json.dumps(asdict(result), indent=2)
