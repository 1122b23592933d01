"""What the gateway benchmark and the soak share: a fresh devnet of node processes with
one `medchain gateway --home` process committing to node0 and a fleet enrolled on chain
(`gateway_net`); a hub's request carrying its devices' readings (`post_readings`); the
gateway drained of what it holds (`drain_gateway`); and which of its batches reached
the chain (`batch_readings`, `committed_batches`)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from medchain.bench._devnet_orgs import founding_key
from medchain.bench._network import ConnectionLost, HttpError, _Http
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, load_keys, save_keys
from medchain.gateway import (
    GATEWAY_KEY_FILE,
    INDEX_FILE,
    GatewayConfig,
    ReadingIndex,
    SimulatedDevice,
    enrol_fleet,
    resending,
    write_config,
)
from medchain.node import (
    ADMIN_KEY_FILE,
    Child,
    DevnetProcesses,
    Program,
    Supervisor,
    free_port_base,
    local_devnet,
)
from medchain.types import ChainParams

Progress = Callable[[str, int, int], None]
_HOSPITAL_FUNDS = 10_000_000
GATEWAY_STOP_S = 30.0
"""How long the gateway may take to stop: it commits the readings it holds first."""
DRAIN_S = 120.0
"""How long the gateway is given to commit what it holds once the load ends."""


@dataclass(frozen=True)
class NetShape:
    """The devnet and the fleet to start."""

    validators: int
    consensus: str
    block_interval_ms: int
    patients: int
    per_patient: int
    committee: int | None = None
    """DPoS: the block producers elected each epoch (None: the chain's default)."""

    def params(self) -> ChainParams | None:
        """The chain's parameters where the shape departs from the devnet's."""
        return None if self.committee is None else ChainParams(committee_size=self.committee)


@dataclass(frozen=True)
class GatewayNet:
    """A running devnet, its gateway and the fleet enrolled for it, and the load
    generator's HTTP client (a connection per patient's hub, and a few)."""

    http: _Http
    nodes: DevnetProcesses
    gateway: Supervisor
    gateway_child: Child
    gw_home: Path
    gateway_url: str
    node_urls: dict[str, str]
    """Node name -> its API's URL, node0 first."""
    devices: list[SimulatedDevice]
    enrol_s: float

    @property
    def node_url(self) -> str:
        """The node the gateway commits to (node0)."""
        return next(iter(self.node_urls.values()))


@contextlib.asynccontextmanager
async def gateway_net(
    home: Path, shape: NetShape, config: GatewayConfig, progress: Progress
) -> AsyncIterator[GatewayNet]:
    """Start the devnet, enrol a hospital, its gateway and the fleet, start the gateway
    with `config` (its node and port filled in), and stop them all on the way out (the
    gateway first: it commits what it holds)."""
    devnet = local_devnet(
        home / "net",
        shape.validators,
        shape.consensus,
        chain_id="medchain-bench",
        block_interval_ms=shape.block_interval_ms,
        params=shape.params(),
    )
    http = _Http(connections=shape.patients + 8)
    with DevnetProcesses(devnet) as nodes, Supervisor(GATEWAY_STOP_S) as gateway:
        try:
            nodes.start_nodes()
            await asyncio.to_thread(nodes.wait_healthy)
            node_url = devnet.nodes[0].api_url
            progress("enrol", 0, 1)
            started = time.monotonic()
            faucet = load_keys(devnet.faucet_key)
            hospital = founding_key(devnet, ADMIN_KEY_FILE)
            gw_keys, devices = await asyncio.to_thread(_enrol, node_url, faucet, hospital, shape)
            enrol_s = time.monotonic() - started
            progress("enrol", 1, 1)
            gw_home = home / "gateway"
            gw_home.mkdir()
            settings = replace(config, node_url=node_url, port=free_port_base(1))
            write_config(gw_home, settings)
            save_keys(gw_home / GATEWAY_KEY_FILE, gw_keys)
            url = f"http://{settings.host}:{settings.port}"
            child = gateway.start(gateway_program(gw_home, f"{url}/v1/health"))
            await asyncio.to_thread(gateway.wait_healthy)
            urls = {n.name: n.api_url for n in devnet.nodes}
            yield GatewayNet(http, nodes, gateway, child, gw_home, url, urls, devices, enrol_s)
        finally:
            await http.close()


def _enrol(
    node_url: str, faucet: AccountKeys, hospital: AccountKeys, shape: NetShape
) -> tuple[AccountKeys, list[SimulatedDevice]]:
    """The hospital's gateway (the hospital's key: a founding organisation's admin),
    registered and funded, and the fleet: the gateway's keys and the devices."""
    gw_keys = AccountKeys.generate()
    with HttpChain(node_url) as chain:
        funder = MedchainClient(faucet, chain)
        funder.transfer(hospital.address, _HOSPITAL_FUNDS)
        funder.transfer(gw_keys.address, _HOSPITAL_FUNDS)
        client = MedchainClient(hospital, chain)
        client.register_gateway(gw_keys.address, "benchmark gateway")
        count = shape.patients * shape.per_patient
        devices = enrol_fleet(chain, hospital, count, 0, per_patient=shape.per_patient)
    return gw_keys, devices


def gateway_program(gw_home: Path, health_url: str) -> Program:
    argv = (sys.executable, "-m", "medchain.cli", "gateway", "--home", str(gw_home))
    return Program("gateway", argv, gw_home / "gateway.log", health_url)


async def post_readings(
    http: _Http,
    gateway_url: str,
    readings: Iterable[bytes],
    on_resend: Callable[[BaseException], None],
) -> list[dict[str, Any]]:
    """POST one hub's readings (their JSON forms) as one array; the gateway's answer for
    each, in order. Sent again while the connection fails before the answer (the gateway
    answers a reading it already took as a duplicate). HttpError, KeyError or ValueError
    when the request fails."""
    body = b"[" + b",".join(readings) + b"]"
    lost = resending(lambda e: isinstance(e, ConnectionLost), on_resend=on_resend)
    async for attempt in lost:
        with attempt:
            response = await http.post_bytes(f"{gateway_url}/v1/readings", body)
    response.raise_for_status()
    answers: list[dict[str, Any]] = response.json()["results"]
    return answers


async def drain_gateway(http: _Http, gateway_url: str, timeout_s: float = DRAIN_S) -> bool:
    """Until the gateway holds no pending reading; False if it still did at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(HttpError, KeyError, ValueError):
            if (await http.get(f"{gateway_url}/v1/health")).json()["pending"] == 0:
                return True
        await asyncio.sleep(0.2)
    return False


def log_tail(gw_home: Path, chars: int = 3000) -> str:
    """The end of the gateway's log, to quote in an error."""
    return (gw_home / "gateway.log").read_text(errors="replace")[-chars:]


def batch_readings(gw_home: Path) -> dict[bytes, list[bytes]]:
    """Batch id -> its reading ids, from the gateway's index."""
    index = ReadingIndex(gw_home / INDEX_FILE)
    try:
        return index.batch_readings()
    finally:
        index.close()


def committed_batches(node_url: str, batch_ids: Sequence[bytes]) -> set[bytes]:
    """The batches among `batch_ids` that the node shows on chain."""
    with HttpChain(node_url) as chain:
        return {b for b in batch_ids if chain.batch(b) is not None}


__all__ = [
    "DRAIN_S",
    "GATEWAY_STOP_S",
    "GatewayNet",
    "NetShape",
    "batch_readings",
    "committed_batches",
    "drain_gateway",
    "gateway_net",
    "gateway_program",
    "log_tail",
    "post_readings",
]
