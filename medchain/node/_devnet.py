"""A local development network: N node homes on this machine, their processes, and
the file that says where each one listens.

`create_devnet` lays out keys, TLS certificates, one genesis and one config per node
(every address and port written in the configs, so the same homes could be copied
to other machines by editing hosts). `start_devnet` runs a `medchain node --home`
process per node (see `_supervisor`) and waits until they serve; `stop_devnet` finds
them by their pid files, so another process (`devnet down`) can stop them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medchain.crypto import AccountKeys, save_keys
from medchain.node import _verification_chain as verification_chain
from medchain.node._config import (
    LOG_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    OUTPUT_FILE,
    PID_FILE,
    NodeConfig,
    PeerConfig,
    read_config,
    write_config,
)
from medchain.node._devnet_orgs import (
    admin_key_file,
    founding_keys,
    org_key_file,
    organisation_of_validator,
)
from medchain.node._genesis_file import read_genesis, write_genesis
from medchain.node._localchain import GENESIS_FILE, wall_clock_ms
from medchain.node._supervisor import (
    P2P_PORT_OFFSET,
    START_TIMEOUT_S,
    STOP_GRACE_S,
    Child,
    Program,
    Supervisor,
    free_port_base,
    stop_processes,
    terminate_pid,
    wait_healthy,
)
from medchain.node._verification_chain import VerificationChain
from medchain.p2p import node_certificate
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator, MedchainError

DEVNET_FILE = "devnet.json"
FAUCET_KEY_FILE = "faucet.key"
DEFAULT_API_PORT = 8600
DEFAULT_P2P_PORT = 9600
VALIDATOR_FUNDS = 1_000_000_000
FAUCET_FUNDS = 10**15
DEVELOPMENT_RECOVERY_DELAY_MS = 10_000
"""A development chain's (devnet's, local chain's) shortest recovery waiting period:
seconds, so that a recovery can be tried end to end; a consortium's genesis keeps the
default of a day."""


def development_params(params: ChainParams) -> ChainParams:
    """`params` for a development chain: the recovery waiting period in seconds unless
    `params` names another than the default."""
    if params.recovery_min_delay_ms != ChainParams().recovery_min_delay_ms:
        return params
    return dataclasses.replace(params, recovery_min_delay_ms=DEVELOPMENT_RECOVERY_DELAY_MS)


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

    def admin_key(self, org_id: str) -> Path:
        """Key file of a founding organisation's admin."""
        return admin_key_file(self.home, org_id)

    def org_key(self, org_id: str) -> Path:
        """Key file of a founding organisation's own account."""
        return org_key_file(self.home, org_id)

    @property
    def validators(self) -> tuple[DevnetNode, ...]:
        return tuple(n for n in self.nodes if n.validator)

    def genesis(self) -> Genesis:
        """The genesis its nodes share."""
        return read_genesis(self.nodes[0].home / GENESIS_FILE)


def changed_params(params: ChainParams) -> list[str]:
    """The chain parameters that differ from the defaults (consensus aside)."""
    default = ChainParams()
    return [
        f.name
        for f in dataclasses.fields(ChainParams)
        if f.name != "consensus" and getattr(params, f.name) != getattr(default, f.name)
    ]


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
    _check_ports(total, api_port, p2p_port)
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
    founders = founding_keys()
    base = development_params(params or ChainParams())
    genesis = Genesis(
        chain_id=chain_id,
        time_ms=wall_clock_ms(),
        params=dataclasses.replace(base, consensus=consensus),
        allocations=(
            Allocation(faucet.address, FAUCET_FUNDS),
            *(Allocation(k.address, VALIDATOR_FUNDS) for k in keys[:validators]),
            *(a for f in founders for a in f.allocations()),
        ),
        validators=tuple(
            GenesisValidator(k.public_key, n, organisation=organisation_of_validator(i))
            for i, (k, n) in enumerate(zip(keys[:validators], names[:validators], strict=True))
        ),
        organisations=tuple(f.genesis_entry() for f in founders),
    )
    home.mkdir(parents=True, exist_ok=True)
    save_keys(home / FAUCET_KEY_FILE, faucet)
    for founder in founders:
        founder.save(home)
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


def _check_ports(nodes: int, api_port: int, p2p_port: int) -> None:
    top = max(api_port, p2p_port) + nodes - 1
    if top > 65_535:
        raise DevnetError(
            f"node {nodes - 1} would listen on port {top}, past 65535; "
            "choose lower --api-port and --p2p-port"
        )


def open_devnet(home: Path, create: Callable[[], Devnet]) -> tuple[Devnet, bool]:
    """The devnet in `home` as it is, or the one `create` lays out there; True if it
    was created."""
    if (home / DEVNET_FILE).exists():
        return load_devnet(home), False
    return create(), True


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


@dataclass(frozen=True, slots=True)
class NetNode:
    """A node known by its API's URL."""

    name: str
    url: str
    home: Path | None
    """Known when it runs on this machine as a node of a devnet."""


def net_nodes(devnet: Devnet) -> list[NetNode]:
    return [NetNode(n.name, n.api_url, n.home) for n in devnet.nodes]


def given_nodes(urls: list[str], devnet_home: Path) -> tuple[list[NetNode], Devnet | None]:
    """The nodes of these URLs; if the first is a node of the devnet in
    `devnet_home` (where `medchain devnet up` and `make run` put it), that devnet's
    other nodes and its homes are known too."""
    try:
        devnet: Devnet | None = load_devnet(devnet_home)
    except DevnetError:
        devnet = None
    by_url = {n.api_url.rstrip("/"): n for n in devnet.nodes} if devnet else {}
    wanted = [u.rstrip("/") for u in urls]
    if devnet is None or wanted[0] not in by_url:
        return [NetNode(u, u, None) for u in wanted], None
    wanted += [u for u in by_url if u not in wanted]
    nodes = [
        NetNode(by_url[u].name, u, by_url[u].home) if u in by_url else NetNode(u, u, None)
        for u in wanted
    ]
    return nodes, devnet


# -- processes ------------------------------------------------------------------------


def node_command(node_home: Path) -> list[str]:
    return [sys.executable, "-m", "medchain.cli", "node", "--home", str(node_home)]


def node_program(node_home: Path, *, own_session: bool = True) -> Program:
    """`medchain node` for `node_home`. It writes and rotates its own node.log; what it
    prints outside the log (an error before its logging is set up, an interpreter
    crash) goes to node.out."""
    return Program(
        name=node_home.name,
        argv=tuple(node_command(node_home)),
        output=node_home / OUTPUT_FILE,
        health_url=f"{read_config(node_home).api_url}/health",
        log=node_home / LOG_FILE,
        own_session=own_session,
    )


def start_node(node_home: Path, *, detach: bool = False) -> Child:
    """Start `medchain node` for `node_home`; `detach` puts it in a session of its
    own, so it outlives the caller."""
    running = read_pid(node_home)
    if running is not None:
        raise DevnetError(
            f"a node already runs for {node_home} (pid {running}); "
            "stop it first with `medchain devnet down`"
        )
    return Child(node_program(node_home, own_session=detach))


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
    """Guard against a stale pid file naming a recycled pid (or an exited child not
    reaped yet, whose command line is empty)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True  # no /proc: trust the pid file
    return b"node" in cmdline and str(node_home).encode() in cmdline


def stop_node(node_home: Path, timeout_s: float = STOP_GRACE_S) -> bool:
    """SIGTERM the node of `node_home` (found by its pid file) and wait; SIGKILL after
    `timeout_s`. True if a node was running."""
    pid = read_pid(node_home)
    if pid is None:
        return False
    if terminate_pid(pid, lambda: read_pid(node_home) is None, timeout_s):
        (node_home / PID_FILE).unlink(missing_ok=True)  # killed: it could not remove it
    return True


def start_devnet(devnet: Devnet, timeout_s: float = START_TIMEOUT_S) -> None:
    """Start the devnet's verification chain and the nodes not running yet, each in a
    session of its own (they outlive this process; Ctrl-C reaches the caller only), and
    wait until every node answers /health. On any failure what was started is stopped."""
    programs = [node_program(n.home) for n in devnet.nodes]  # a bad config fails here
    started: list[Child] = []
    try:
        start_verification_chain(devnet)
        targets: list[Child | Program] = []
        for node, program in zip(devnet.nodes, programs, strict=True):
            if read_pid(node.home) is None:
                started.append(Child(program))
                targets.append(started[-1])
            else:
                targets.append(program)
        wait_healthy(targets, timeout_s)
    except BaseException:
        stop_processes(started)  # also those that have not written their pid file yet
        stop_devnet(devnet)
        raise


def stop_devnet(devnet: Devnet) -> int:
    """Stop every node of the devnet, and its verification chain; how many nodes ran."""
    stopped = sum(stop_node(n.home) for n in devnet.nodes)
    stop_verification_chain(devnet)
    return stopped


class DevnetProcesses(Supervisor):
    """The node processes of a devnet that this process runs and stops itself (the
    demo, the benchmarks, the multi-process tests): a `Supervisor` whose children are
    named after the nodes, which also starts the devnet's verification chain before
    the first node and stops it after the last."""

    def __init__(self, devnet: Devnet, grace_s: float = STOP_GRACE_S) -> None:
        super().__init__(grace_s)
        self.devnet = devnet
        self._chain = False

    def node(self, name: str) -> DevnetNode:
        return next(n for n in self.devnet.nodes if n.name == name)

    def start_nodes(self, names: Sequence[str] | None = None) -> list[Child]:
        """Start these nodes (every node by default), not waiting for them."""
        if not self._chain:
            start_verification_chain(self.devnet)  # first: it configures the nodes
            self._chain = True
        chosen = names if names is not None else [n.name for n in self.devnet.nodes]
        return [self.start(node_program(self.node(name).home)) for name in chosen]

    def stop_all(self, grace_s: float | None = None) -> int:
        try:
            return super().stop_all(grace_s)
        finally:
            if self._chain:
                stop_verification_chain(self.devnet)


def local_devnet(
    home: Path,
    validators: int,
    consensus: str,
    *,
    observers: int = 0,
    chain_id: str,
    block_interval_ms: int = 1_000,
    round_timeout_ms: int = 2_000,
    params: ChainParams | None = None,
    verification: VerificationChain | None = None,
) -> Devnet:
    """A new devnet on 127.0.0.1, on ports free now: for one beside others (tests,
    the demo, the benchmarks)."""
    base = free_port_base(validators + observers)
    return create_devnet(
        home,
        validators,
        consensus,
        observers=observers,
        api_port=base,
        p2p_port=base + P2P_PORT_OFFSET,
        chain_id=chain_id,
        block_interval_ms=block_interval_ms,
        round_timeout_ms=round_timeout_ms,
        params=params,
        verification=verification,
    )


def until_a_node_exits(devnet: Devnet, poll_s: float = 0.5) -> str:
    """Block until a node of the devnet is no longer running; its name."""
    while True:
        for node in devnet.nodes:
            if read_pid(node.home) is None:
                return node.name
        time.sleep(poll_s)


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
