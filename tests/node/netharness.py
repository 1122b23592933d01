"""Real node processes on 127.0.0.1 for the multi-process tests: a devnet in a
temporary directory, on free ports, driven over its HTTP API.

The tests run on machines busy with other work (`make test` beside a build, CI on
shared cores), so every wait is for a condition, with a deadline long enough for a
machine several times slower than usual: a deadline only costs time when the test
fails anyway."""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from medchain.app import OrgKind, TransferArgs
from medchain.bench._devnet_orgs import founding_key
from medchain.crypto import AccountKeys, format_address, load_keys, signed_tx
from medchain.node import (
    ADMIN_KEY_FILE,
    GENESIS_FILE,
    ORG_KEY_FILE,
    Devnet,
    DevnetNode,
    DevnetProcesses,
    VerificationChain,
    free_port_base,
    local_devnet,
    read_genesis,
    read_pid,
    stop_processes,
    stop_verification_chain,
)
from medchain.types import ChainParams, Tx, tx_id
from tests.waiting import wait_until

START_S = 180.0
"""How long a node process may take to serve its API: it imports the whole stack
first, which alone takes many seconds when other processes keep the cores busy."""
PATIENCE_S = 120.0
"""The default wait for progress of the chain (heights, commits)."""
STOP_S = 60.0
"""How long a node may take to stop cleanly (it closes its stores) on SIGTERM."""
REQUEST_S = 30.0
"""One HTTP request to a node, which answers slowly while the machine is loaded."""


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """`wait_until` a node's answer says so; a request that fails counts as "not yet"."""
    wait_until(condition, timeout_s, what, ignoring=(httpx.HTTPError,), poll_s=0.1)


class LiveNet:
    def __init__(
        self,
        home: Path,
        validators: int = 4,
        consensus: str = "pbft",
        *,
        observers: int = 0,
        block_interval_ms: int = 250,
        round_timeout_ms: int = 1_000,
        anchoring: bool = False,
        params: ChainParams | None = None,
    ) -> None:
        """`anchoring`: the devnet's own Ganache, with fast blocks and polling; `params`:
        the genesis's chain parameters (its consensus is `consensus`)."""
        verification = (
            VerificationChain(free_port_base(1), block_time_ms=250, confirmations=2, poll_ms=300)
            if anchoring
            else None
        )
        self.devnet: Devnet = local_devnet(
            home,
            validators,
            consensus,
            observers=observers,
            chain_id="medchain-nettest",
            block_interval_ms=block_interval_ms,
            round_timeout_ms=round_timeout_ms,
            params=params,
            verification=verification,
        )
        self.processes = DevnetProcesses(self.devnet, STOP_S)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        """The node processes started, by name (each a `Child`)."""
        self.http = httpx.Client(timeout=REQUEST_S)
        self.faucet: AccountKeys = load_keys(self.devnet.faucet_key)
        self.nonces: dict[bytes, int] = {}

    def founder_admin(self, kind: OrgKind = OrgKind.HOSPITAL) -> AccountKeys:
        """The admin of the devnet's first founding organisation of `kind` (credentials
        clinicians, registers gateways and devices)."""
        return founding_key(self.devnet, ADMIN_KEY_FILE, kind)

    def founder_account(self, kind: OrgKind = OrgKind.RESEARCH) -> AccountKeys:
        """The account of the devnet's first founding organisation of `kind` (research
        copies, anonymous scopes)."""
        return founding_key(self.devnet, ORG_KEY_FILE, kind)

    @functools.cached_property
    def min_fee(self) -> int:
        return read_genesis(self.devnet.nodes[0].home / GENESIS_FILE).params.min_fee

    # -- processes --------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        return [n.name for n in self.devnet.nodes]

    def node(self, name: str) -> DevnetNode:
        return next(n for n in self.devnet.nodes if n.name == name)

    def url(self, name: str) -> str:
        return self.node(name).api_url

    def start(self, names: Sequence[str] | None = None, wait: bool = True) -> None:
        """Start these nodes (the validators by default); with `wait`, until every node
        started so far serves its API."""
        chosen = list(names or [n.name for n in self.devnet.nodes if n.validator])
        self.procs.update((child.name, child) for child in self.processes.start_nodes(chosen))
        if wait:
            self.processes.wait_healthy(names or list(self.procs), START_S)

    def healthy(self, name: str) -> bool:
        """Serving; an AssertionError if its process exited (no use waiting)."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"{name} exited with status {proc.returncode}; see its log")
        return self.http.get(f"{self.url(name)}/health", timeout=5.0).status_code == 200

    def signal(self, name: str, sig: int) -> None:
        os.kill(self.procs[name].pid, sig)
        if sig == signal.SIGKILL:
            self.procs[name].wait(STOP_S)

    def running(self) -> list[str]:
        return [n for n, p in self.procs.items() if p.poll() is None]

    def close(self) -> None:
        try:
            stop_processes(self.procs.values(), STOP_S)
        finally:
            self.http.close()
            stop_verification_chain(self.devnet)
        for node in self.devnet.nodes:
            assert read_pid(node.home) is None or node.name not in self.procs

    def log(self, name: str) -> str:
        return (self.node(name).home / "node.log").read_text(errors="replace")

    # -- the API ----------------------------------------------------------------------

    def status(self, name: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url(name)}/v1/status")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def height(self, name: str) -> int:
        return int(self.status(name)["height"])

    def wait_height(self, names: Sequence[str], height: int, timeout_s: float = PATIENCE_S) -> None:
        wait_for(
            lambda: all(self.height(n) >= height for n in names),
            timeout_s,
            f"{', '.join(names)} to reach height {height}",
        )

    def block(self, name: str, height: int) -> dict[str, Any]:
        response = self.http.get(f"{self.url(name)}/v1/blocks/{height}")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def metric(self, name: str, metric: str) -> float:
        text = self.http.get(f"{self.url(name)}/metrics").text
        for line in text.splitlines():
            if line.startswith(metric + " ") or line.startswith(metric + "{"):
                return float(line.rsplit(" ", 1)[1])
        raise AssertionError(f"{metric} not in {name}'s /metrics")

    def transfer(self, sender: AccountKeys, to: bytes, amount: int) -> Tx:
        """A signed transfer from `sender` with its next nonce (counted here)."""
        nonce = self.nonces.get(sender.public_key, 0)
        self.nonces[sender.public_key] = nonce + 1
        return signed_tx(
            sender,
            self.devnet.chain_id,
            nonce,
            "accounts.transfer",
            TransferArgs(to, amount, ""),
            self.min_fee,
        )

    def transfers(self, count: int, sender: AccountKeys | None = None) -> list[Tx]:
        """`count` signed transfers from `sender` (the faucet by default), consecutive
        nonces; the mempool takes at most 256 pending from one sender."""
        keys = sender or self.faucet
        return [self.transfer(keys, self.faucet.address, 1) for _ in range(count)]

    def fund(self, count: int, amount: int = 10**9) -> list[AccountKeys]:
        """`count` new accounts funded by the faucet, once committed."""
        accounts = [AccountKeys.generate() for _ in range(count)]
        txs = [self.transfer(self.faucet, account.address, amount) for account in accounts]
        name = self.running()[0]
        hashes = self.submit(name, txs)
        wait_for(lambda: all(self.committed(name, h) for h in hashes), PATIENCE_S, "funding")
        return accounts

    def submit(self, name: str, txs: Sequence[Tx]) -> list[bytes]:
        """Submit in batches; returns the hashes the node accepted."""
        accepted = []
        for start in range(0, len(txs), 200):
            chunk = txs[start : start + 200]
            response = self.http.post(
                f"{self.url(name)}/v1/txs/batch", json={"txs": [t.encoded.hex() for t in chunk]}
            )
            response.raise_for_status()
            for tx, result in zip(chunk, response.json()["results"], strict=True):
                if result["accepted"]:
                    accepted.append(tx_id(tx))
        return accepted

    def committed(self, name: str, tx_hash: bytes) -> bool:
        response = self.http.get(f"{self.url(name)}/v1/txs/{tx_hash.hex()}")
        return response.status_code == 200 and response.json()["status"] == "committed"

    def committed_hashes(self, name: str, up_to: int | None = None) -> set[bytes]:
        """Every transaction in `name`'s blocks up to `up_to` (its latest by default)."""
        top = self.height(name) if up_to is None else up_to
        return {
            bytes.fromhex(h)
            for height in range(1, top + 1)
            for h in self.block(name, height)["tx_hashes"]
        }

    def nonce(self, name: str, account: AccountKeys) -> int:
        response = self.http.get(f"{self.url(name)}/v1/accounts/{format_address(account.address)}")
        response.raise_for_status()
        return int(response.json()["nonce"])

    def anchoring(self, name: str) -> dict[str, Any]:
        response = self.http.get(f"{self.url(name)}/v1/anchoring")
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def assert_agreement(self, names: Sequence[str], up_to: int) -> None:
        """Every node in `names` holds the same block hash and state root at every
        height up to `up_to`."""
        for height in range(1, up_to + 1):
            seen = {(b["hash"], b["state_root"]) for b in (self.block(n, height) for n in names)}
            assert len(seen) == 1, f"nodes disagree at height {height}: {seen}"


@contextlib.contextmanager
def live_net(home: Path, *args: Any, **kwargs: Any) -> Iterator[LiveNet]:
    net = LiveNet(home, *args, **kwargs)
    try:
        yield net
    except BaseException:
        for name in net.names:  # the failing test's evidence, in pytest's output
            with contextlib.suppress(OSError):
                print(f"--- {name} node.log (tail) ---\n{net.log(name)[-3000:]}")
        raise
    finally:
        net.close()
