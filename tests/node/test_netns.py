"""Four validators in four Linux network namespaces, one address and one interface
each, joined by veth links to a bridge: nothing may assume the nodes share a
machine (a loopback, a port range, an interface). Every node listens on the same
two ports at its own address. Needs root and iproute2; marked slow."""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx
import pytest

from medchain.crypto import load_keys
from medchain.node import OUTPUT_FILE, create_devnet, read_config
from tests.node.netharness import PATIENCE_S, REQUEST_S, START_S, LiveNet, wait_for

pytestmark = pytest.mark.slow

NODES = 4
API_PORT = 8600
P2P_PORT = 9600
IP_TIMEOUT_S = 10.0


def _ip(*args: str, netns: str | None = None) -> subprocess.CompletedProcess[str]:
    argv = ["ip", *(("-n", netns) if netns else ()), *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=IP_TIMEOUT_S)


def _must(*args: str, netns: str | None = None) -> None:
    done = _ip(*args, netns=netns)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {done.stderr.strip()}")


def _used_subnets() -> set[ipaddress.IPv4Network]:
    out = _ip("-4", "-o", "addr", "show").stdout
    return {
        ipaddress.IPv4Interface(line.split()[3]).network
        for line in out.splitlines()
        if len(line.split()) > 3
    }


class Fabric:
    """A switch namespace holding a bridge; one namespace per node, its `eth0` a veth
    to the bridge; and a veth from this (root) namespace to the bridge, so the test
    reaches every node's API directly. Names and the /24 derive from the pid, so
    parallel runs do not collide; `close` removes everything `open` made."""

    def __init__(self, count: int) -> None:
        tag = f"mct{os.getpid()}"
        self.switch = f"{tag}sw"
        self.namespaces = [f"{tag}n{i}" for i in range(count)]
        self.root_link = f"{tag}r"  # at most 15 characters with a 7-digit pid
        used = _used_subnets()
        base = os.getpid() % 250
        third = next(
            (base + k) % 250 + 1
            for k in range(250)
            if ipaddress.IPv4Network(f"10.77.{(base + k) % 250 + 1}.0/24") not in used
        )
        self.prefix = f"10.77.{third}"
        self.addresses = [f"{self.prefix}.{i + 1}" for i in range(count)]
        self._made: list[str] = []

    def open(self) -> None:
        first = _ip("netns", "add", self.switch)
        if first.returncode != 0:
            pytest.skip(f"cannot create network namespaces: {first.stderr.strip()}")
        self._made.append(self.switch)
        _must("link", "add", "br0", "type", "bridge", netns=self.switch)
        _must("link", "set", "br0", "up", netns=self.switch)
        for i, (ns, address) in enumerate(zip(self.namespaces, self.addresses, strict=True)):
            _must("netns", "add", ns)
            self._made.append(ns)
            port = f"p{i}"
            _must(
                "link", "add", port, "netns", self.switch,
                "type", "veth", "peer", "name", "eth0", "netns", ns,
            )  # fmt: skip
            _must("link", "set", port, "master", "br0", "up", netns=self.switch)
            _must("addr", "add", f"{address}/24", "dev", "eth0", netns=ns)
            _must("link", "set", "eth0", "up", netns=ns)
            _must("link", "set", "lo", "up", netns=ns)
        _must(
            "link", "add", self.root_link,
            "type", "veth", "peer", "name", "uplink", "netns", self.switch,
        )  # fmt: skip
        self._made.append(self.root_link)
        _must("link", "set", "uplink", "master", "br0", "up", netns=self.switch)
        _must("addr", "add", f"{self.prefix}.254/24", "dev", self.root_link)
        _must("link", "set", self.root_link, "up")

    def close(self) -> list[str]:
        """Undo `open`, also a partial one; returns what would not go."""
        left = []
        for made in reversed(self._made):
            kind = "link" if made == self.root_link else "netns"
            done = _ip(kind, "del", made)
            if done.returncode != 0:
                left.append(f"{kind} {made}: {done.stderr.strip()}")
        self._made.clear()
        return left

    def inode(self, ns: str) -> int:
        return os.stat(f"/run/netns/{ns}").st_ino


class NetnsNet(LiveNet):
    """LiveNet (see netharness) whose nodes each run inside their own namespace."""

    def __init__(self, home: Path, fabric: Fabric) -> None:
        self.fabric = fabric
        self.devnet = create_devnet(
            home,
            NODES,
            "afbft",
            hosts=fabric.addresses,
            api_port=API_PORT,
            p2p_port=P2P_PORT,
            chain_id="medchain-netns",
            block_interval_ms=250,
            round_timeout_ms=1_000,
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.http = httpx.Client(timeout=REQUEST_S, trust_env=False)  # never via a proxy
        self.faucet = load_keys(self.devnet.faucet_key)
        self.nonces: dict[bytes, int] = {}

    def namespace(self, name: str) -> str:
        return self.fabric.namespaces[self.names.index(name)]

    def start(self, names: Sequence[str] | None = None, wait: bool = True) -> None:
        for name in names or self.names:
            home = self.node(name).home
            with open(home / OUTPUT_FILE, "wb") as out:  # the node writes its own node.log
                self.procs[name] = subprocess.Popen(
                    [
                        "ip", "netns", "exec", self.namespace(name),
                        sys.executable, "-m", "medchain.cli", "node", "--home", str(home),
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,  # its own group: close() can kill all of it
                    env={**os.environ, "PYTHONUNBUFFERED": "1"},
                )  # fmt: skip
        if wait:
            for name in names or self.names:
                wait_for(functools.partial(self.healthy, name), START_S, f"{name} to serve its API")

    def close(self) -> None:
        try:
            super().close()
        finally:
            for proc in self.procs.values():  # anything `ip netns exec` left behind
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def netns_net(home: Path) -> Iterator[NetnsNet]:
    """The namespaces and the devnet; on the way out (failed or not) the processes
    are killed and the namespaces, bridge and links deleted."""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("network namespaces need the `ip` command (iproute2)")
    fabric = Fabric(NODES)
    net: NetnsNet | None = None
    try:
        fabric.open()
        net = NetnsNet(home, fabric)
        yield net
    except Exception:
        if net is not None:  # the evidence, in pytest's output
            for name in net.names:
                with contextlib.suppress(OSError):
                    print(f"--- {name} node.log (tail) ---\n{net.log(name)[-3000:]}")
        raise
    finally:
        try:
            if net is not None:
                net.close()
        finally:
            left = fabric.close()
        assert not left, f"left behind: {left}"


def test_four_validators_in_four_namespaces_commit_and_agree(tmp_path: Path) -> None:
    with netns_net(tmp_path) as net:
        _commit_and_agree(net)


def _commit_and_agree(net: NetnsNet) -> None:
    addresses = net.fabric.addresses
    for i, node in enumerate(net.devnet.nodes):  # own address, same ports, peers elsewhere
        config = read_config(node.home)
        assert (config.p2p_host, config.api_host) == (addresses[i], addresses[i])
        assert (config.p2p_port, config.api_port) == (P2P_PORT, API_PORT)
        assert sorted(str(p.host) for p in config.peers) == sorted(
            a for a in addresses if a != addresses[i]
        )

    net.start()
    for name, proc in net.procs.items():  # each process really is in its namespace
        assert os.stat(f"/proc/{proc.pid}/ns/net").st_ino == net.fabric.inode(net.namespace(name))
    wait_for(
        lambda: all(all(p["connected"] for p in net.status(n)["peers"]) for n in net.names),
        PATIENCE_S,
        "every node to connect to its three peers",
    )

    senders = net.fund(4)
    accepted = []
    for i, sender in enumerate(senders):  # each node takes some of the load
        accepted += net.submit(net.names[i], net.transfers(25, sender))
    assert len(accepted) == 100
    wait_for(lambda: all(net.nonce("node0", s) == 25 for s in senders), PATIENCE_S, "100 commits")
    top = min(net.height(n) for n in net.names)
    net.assert_agreement(net.names, top)
    for name in net.names:
        assert set(accepted) <= net.committed_hashes(name, top)
