"""Ganache as the verification chain: the real binary, over HTTP (slow), and the
errors a user meets when it is missing or does not answer (fast)."""

from __future__ import annotations

import os
import random
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from eth_account import Account
from web3 import HTTPProvider, Web3

from medchain.anchor import (
    AlreadyAnchored,
    AnchorContract,
    AnchorError,
    AnchorSettings,
    CheckpointCertificate,
    CheckpointSignature,
    GanacheError,
    _ganache,
    ganache_binary,
    new_eth_key,
    start_ganache,
    stop_ganache,
    wait_ready,
)
from tests.waiting import wait_until

ETH_CHAIN_ID = 1337
BALANCE_WEI = 10**21


def free_port() -> int:
    """A free port below the kernel's ephemeral range (so no outgoing connection takes
    it between this check and Ganache binding it)."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(100):
        port = rng.randrange(20_000, 30_000)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


def cert(chain_id: str, height: int) -> CheckpointCertificate:
    sigs = tuple(CheckpointSignature(os.urandom(32), os.urandom(64)) for _ in range(3))
    return CheckpointCertificate(chain_id, height, os.urandom(32), os.urandom(32), sigs)


def test_missing_binary_says_to_run_make_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_ganache, "PROJECT_ROOT", tmp_path)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GanacheError, match="run `make install`"):
        ganache_binary()
    with pytest.raises(GanacheError, match="Ganache is not installed"):
        start_ganache(free_port(), [], ETH_CHAIN_ID, None, tmp_path / "ganache.log")


def test_wait_ready_gives_up_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(GanacheError, match=f"{url} did not answer within 0.3 s"):
        wait_ready(url, 0.3)


@pytest.mark.slow
def test_anchor_on_real_ganache(tmp_path: Path) -> None:
    """Deploy, register, anchor and read back over HTTP, as a devnet does; two
    validators racing with the same checkpoint: one anchors, the other is told."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    homes = [tmp_path / f"node{i}" for i in range(3)]
    keys = [new_eth_key(home / "eth.key") for home in homes]
    deployer, unfunded = Account.create(), Account.create()
    funded = [(a.key.hex(), BALANCE_WEI) for a in (deployer, *keys)]
    proc = start_ganache(port, funded, ETH_CHAIN_ID, 0.5, tmp_path / "ganache.log")
    try:
        wait_ready(url, 180, proc)  # Node.js loads Ganache: slow on a busy machine
        w3 = Web3(HTTPProvider(url))
        assert w3.eth.chain_id == ETH_CHAIN_ID
        address = AnchorContract.deploy(w3, deployer)
        admin = AnchorContract(w3, address, deployer)
        admin.register_chain("medchain-ganache", [k.address for k in keys] + [unfunded.address])

        def node(i: int, **settings: object) -> AnchorContract:
            doc = {"rpc_url": url, "eth_chain_id": ETH_CHAIN_ID, "contract": address}
            return AnchorContract.connect(AnchorSettings.from_json({**doc, **settings}), homes[i])

        first = cert("medchain-ganache", 10)
        node(0).submit(first)
        raced = cert("medchain-ganache", 20)
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(lambda i: _outcome(node(i), raced), (1, 2)))
        assert sorted(outcomes) == ["already anchored", "anchored"]

        reader = node(0, enabled=False, finality="finalized")
        anchors = reader.anchors("medchain-ganache")
        assert [(a.height, a.block_hash, a.state_root) for a in anchors] == [
            (c.height, c.block_hash, c.state_root) for c in (first, raced)
        ]
        assert set(anchors[1].signatures) == set(raced.signatures)
        assert anchors[0].submitter == keys[0].address
        assert all(a.final for a in anchors)  # Ganache's finalized block is its latest
        assert reader.latest_height("medchain-ganache") == 20

        by_confirmations = node(0, enabled=False, finality=3)
        wait_until(
            lambda: by_confirmations.anchors("medchain-ganache")[1].final,
            120,
            "Ganache to mine three confirmations of the anchor",
            poll_s=0.2,
        )
        assert w3.eth.block_number - anchors[1].eth_block + 1 >= 3

        with pytest.raises(AnchorError, match="insufficient funds"):
            AnchorContract(w3, address, unfunded).submit(cert("medchain-ganache", 30))
    finally:
        stop_ganache(proc)
    assert proc.returncode is not None


def _outcome(client: AnchorContract, checkpoint: CheckpointCertificate) -> str:
    try:
        client.submit(checkpoint)
    except AlreadyAnchored:
        return "already anchored"
    return "anchored"
