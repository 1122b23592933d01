"""A local development network: N node homes on this machine, their processes, and
the file that says where each one listens.

`create_devnet` lays out keys, TLS certificates, one genesis and one config per node
(every address and port written in the configs, so the same homes could be copied
to other machines by editing hosts). `start_node` runs `medchain node --home` as a
child process; `stop_node` asks it to stop with SIGTERM and kills it if it does not.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medchain.crypto import AccountKeys, save_keys
from medchain.node import _verification_chain as verification_chain
from medchain.node._config import (
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    OUTPUT_FILE,
    PID_FILE,
    NodeConfig,
    PeerConfig,
    write_config,
)
from medchain.node._genesis_file import write_genesis
from medchain.node._localchain import GENESIS_FILE, wall_clock_ms
from medchain.node._verification_chain import VerificationChain
from medchain.p2p import node_certificate
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator, MedchainError

DEVNET_FILE = "devnet.json"
FAUCET_KEY_FILE = "faucet.key"
DEFAULT_API_PORT = 8600
DEFAULT_P2P_PORT = 9600
VALIDATOR_FUNDS = 1_000_000_000
FAUCET_FUNDS = 10**15


class DevnetError(MedchainError):
    code = "devnet"


@dataclass(frozen=True, slots=True)
class DevnetNode:
    name: str
    home: Path
    api_url: str
    p2p_port: int
    validator: bool


@dataclass(frozen=True, slots=True)
class Devnet:
    home: Path
    chain_id: str
    consensus: str
    nodes: tuple[DevnetNode, ...]
    verification: VerificationChain | None = None
    """The devnet's own Ganache, where its validators anchor checkpoints."""

    @property
    def faucet_key(self) -> Path:
        """Key file of an account funded in genesis, for demos and benchmarks."""
        return self.home / FAUCET_KEY_FILE

    @property
    def validators(self) -> tuple[DevnetNode, ...]:
        return tuple(n for n in self.nodes if n.validator)


def create_devnet(
    home: Path,
    validators: int = 4,
    consensus: str = "afbft",
    *,
    observers: int = 0,
    host: str = "127.0.0.1",
    hosts: Sequence[str] | None = None,
    api_port: int = DEFAULT_API_PORT,
    p2p_port: int = DEFAULT_P2P_PORT,
    chain_id: str = "medchain-devnet",
    block_interval_ms: int = 1_000,
    round_timeout_ms: int = 2_000,
    params: ChainParams | None = None,
    verification: VerificationChain | None = None,
) -> Devnet:
    """Write a new devnet under `home`: `validators` voting nodes then `observers`
    full nodes. Node i listens on `hosts[i]` (every node on `host` by default), at
    `api_port + k` (HTTP) and `p2p_port + k` (P2P), k counting the nodes before it
    on the same host: nodes on hosts of their own all use the same two ports."""
    if validators < 1:
        raise DevnetError("a devnet needs at least one validator")
    total = validators + observers
    addresses = list(hosts) if hosts is not None else [host] * total
    if len(addresses) != total:
        raise DevnetError(f"give one host per node: {total} nodes, {len(addresses)} hosts")
    slots = [addresses[:i].count(a) for i, a in enumerate(addresses)]
    if (home / DEVNET_FILE).exists():
        raise DevnetError(f"{home} already holds a devnet; start it, or choose another --home")
    names = [f"node{i}" for i in range(total)]
    keys = [AccountKeys.generate() for _ in range(total)]
    certs = [node_certificate(k, n) for k, n in zip(keys, names, strict=True)]
    faucet = AccountKeys.generate()
    base = params or ChainParams()
    genesis = Genesis(
        chain_id=chain_id,
        time_ms=wall_clock_ms(),
        params=dataclasses.replace(base, consensus=consensus),
        allocations=(
            Allocation(faucet.address, FAUCET_FUNDS),
            *(Allocation(k.address, VALIDATOR_FUNDS) for k in keys[:validators]),
        ),
        validators=tuple(
            GenesisValidator(k.public_key, n)
            for k, n in zip(keys[:validators], names[:validators], strict=True)
        ),
    )
    home.mkdir(parents=True, exist_ok=True)
    save_keys(home / FAUCET_KEY_FILE, faucet)
    peers = [
        PeerConfig(n, k.public_key, c, addresses[i], p2p_port + slots[i])
        for i, (n, k, c) in enumerate(zip(names, keys, certs, strict=True))
    ]
    nodes = []
    for i, name in enumerate(names):
        node_home = home / name
        node_home.mkdir(parents=True, exist_ok=True)
        save_keys(node_home / NODE_KEY_FILE, keys[i])
        (node_home / NODE_CERT_FILE).write_bytes(certs[i])
        write_genesis(node_home / GENESIS_FILE, genesis)
        config = NodeConfig(
            name=name,
            p2p_host=addresses[i],
            p2p_port=p2p_port + slots[i],
            api_host=addresses[i],
            api_port=api_port + slots[i],
            peers=tuple(p for j, p in enumerate(peers) if j != i),
            block_interval_ms=block_interval_ms,
            round_timeout_ms=round_timeout_ms,
        )
        write_config(node_home, config)
        nodes.append(DevnetNode(name, node_home, config.api_url, config.p2p_port, i < validators))
    devnet = Devnet(home, chain_id, consensus, tuple(nodes), verification)
    if verification is not None:
        verification_chain.prepare(home, [n.home for n in devnet.validators])
    _write_devnet(devnet)
    return devnet


def _write_devnet(devnet: Devnet) -> None:
    doc: dict[str, Any] = {
        "chain_id": devnet.chain_id,
        "consensus": devnet.consensus,
        "nodes": [
            {
                "name": n.name,
                "home": n.name,
                "api": n.api_url,
                "p2p_port": n.p2p_port,
                "validator": n.validator,
            }
            for n in devnet.nodes
        ],
    }
    if devnet.verification is not None:
        doc["verification_chain"] = devnet.verification.to_json()
    (devnet.home / DEVNET_FILE).write_text(json.dumps(doc, indent=2) + "\n")


def load_devnet(home: Path) -> Devnet:
    path = home / DEVNET_FILE
    try:
        doc = json.loads(path.read_text())
        return Devnet(
            home=home,
            chain_id=str(doc["chain_id"]),
            consensus=str(doc["consensus"]),
            nodes=tuple(
                DevnetNode(
                    str(n["name"]),
                    home / str(n["home"]),
                    str(n["api"]),
                    int(n["p2p_port"]),
                    bool(n["validator"]),
                )
                for n in doc["nodes"]
            ),
            verification=(
                VerificationChain.from_json(doc["verification_chain"])
                if "verification_chain" in doc
                else None
            ),
        )
    except FileNotFoundError:
        raise DevnetError(
            f"{home} holds no devnet; create one with `medchain devnet up --home {home}`"
        ) from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DevnetError(f"{path} is damaged ({exc!r}); remove {home} and start anew") from exc


# -- processes ------------------------------------------------------------------------


P2P_PORT_OFFSET = 500
"""`free_port_base` leaves P2P ports this far above the API ports."""


def free_port_base(count: int, host: str = "127.0.0.1") -> int:
    """A base port such that base .. base+count-1 (APIs) and base+500 .. base+500+count-1
    (P2P) are free on `host` now: for devnets started next to others (tests, demos,
    benchmarks)."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    # below the kernel's ephemeral range: a port checked free there could be taken by
    # an outgoing connection before the node binds it
    top = min(_ephemeral_start(), 60_000) - P2P_PORT_OFFSET - count
    for _ in range(200):
        base = rng.randrange(10_000, max(top, 10_010), 10)
        ports = [
            *range(base, base + count),
            *range(base + P2P_PORT_OFFSET, base + P2P_PORT_OFFSET + count),
        ]
        if all(_port_free(host, port) for port in ports):
            return base
    raise DevnetError(f"no {2 * count} free ports on {host}")


def _ephemeral_start() -> int:
    """The first port the kernel hands to outgoing connections (Linux; else IANA's)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49_152


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def node_command(node_home: Path) -> list[str]:
    return [sys.executable, "-m", "medchain.cli", "node", "--home", str(node_home)]


def start_node(node_home: Path, *, detach: bool = False) -> subprocess.Popen[bytes]:
    """Start `medchain node` for `node_home`. It writes and rotates its own node.log;
    what it prints outside the log (an error before its logging is set up, an
    interpreter crash) goes to node.out, emptied at each start so it stays small.
    `detach` puts it in a session of its own, so it outlives the caller."""
    running = read_pid(node_home)
    if running is not None:
        raise DevnetError(
            f"a node already runs for {node_home} (pid {running}); "
            "stop it first with `medchain devnet down`"
        )
    out = open(node_home / OUTPUT_FILE, "wb")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            node_command(node_home),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=detach,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        out.close()


def read_pid(node_home: Path) -> int | None:
    """The pid in the node's pid file if that process is alive."""
    try:
        pid = int((node_home / PID_FILE).read_text().strip())
    except (OSError, ValueError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid if _is_node_process(pid, node_home) else None


def _is_node_process(pid: int, node_home: Path) -> bool:
    """Guard against a stale pid file naming a recycled pid."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return b"node" in cmdline and str(node_home).encode() in cmdline


def stop_node(node_home: Path, timeout_s: float = 10.0) -> bool:
    """SIGTERM the node of `node_home` and wait; SIGKILL after `timeout_s`. True if a
    node was running."""
    pid = read_pid(node_home)
    if pid is None:
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if read_pid(node_home) is None:
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    (node_home / PID_FILE).unlink(missing_ok=True)
    return True


def start_verification_chain(devnet: Devnet) -> int | None:
    """Start the devnet's Ganache and point every node at its anchor contract (before
    the nodes start); None for a devnet without one."""
    if devnet.verification is None:
        return None
    return verification_chain.start(
        devnet.home,
        devnet.verification,
        devnet.chain_id,
        [n.home for n in devnet.nodes],
        [n.home for n in devnet.validators],
    )


def stop_verification_chain(devnet: Devnet) -> bool:
    return devnet.verification is not None and verification_chain.stop(devnet.home)
