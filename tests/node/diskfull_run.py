"""The disk-full scenario of test_disk_full.py, run inside `unshare --user
--map-root-user --mount` (a mount namespace of its own, where an unprivileged user may
mount a tmpfs): `python -m tests.node.diskfull_run WORK SMALL LARGE`.

It mounts a tmpfs of SMALL bytes at WORK/disk, runs a one-validator devnet there and
feeds it transfers until its node stops; then remounts the tmpfs at LARGE bytes,
starts the node again and commits once more. What it saw goes to WORK/facts.json for
the test to judge; the node's stderr goes to WORK (outside the full disk)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from medchain.app import TransferArgs
from medchain.crypto import signed_tx
from medchain.node import node_program
from medchain.types import Tx, tx_id
from tests.node.netharness import PATIENCE_S, START_S, STOP_S, LiveNet, live_net, wait_for

NODE = "node0"
BATCH = 200
MEMO = "m" * 256
"""The longest memo: transfers of about 500 bytes fill the disk in fewer blocks."""
FEED_S = 600.0
"""How long the feeding may go on before the scenario gives up on the disk filling."""


def mount_tmpfs(where: Path, size: int, *, remount: bool = False) -> None:
    options = f"remount,size={size}" if remount else f"size={size}"
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)


def start_node(net: LiveNet, stderr: Path) -> subprocess.Popen[bytes]:
    """The node with its stderr outside the tmpfs (on it, a full disk would swallow it)."""
    with stderr.open("wb") as err:
        proc = subprocess.Popen(
            node_program(net.node(NODE).home).argv, stdout=subprocess.DEVNULL, stderr=err
        )
    net.procs[NODE] = proc
    wait_for(lambda: net.healthy(NODE), START_S, f"{NODE} to serve its API")
    return proc


def transfer(net: LiveNet, nonce: int) -> Tx:
    args = TransferArgs(net.faucet.address, 1, MEMO)
    return signed_tx(net.faucet, net.devnet.chain_id, nonce, "accounts.transfer", args, net.min_fee)


def where_committed(net: LiveNet, hashes: list[bytes]) -> dict[str, list[Any]]:
    """tx hash -> [height, state root of that block] for those committed."""
    found: dict[str, list[Any]] = {}
    roots: dict[int, str] = {}
    for tx_hash in hashes:
        response = net.http.get(f"{net.url(NODE)}/v1/txs/{tx_hash.hex()}")
        if response.status_code != 200 or response.json()["status"] != "committed":
            continue
        height = int(response.json()["height"])
        if height not in roots:
            roots[height] = net.block(NODE, height)["state_root"]
        found[tx_hash.hex()] = [height, roots[height]]
    return found


def feed_until_stopped(net: LiveNet, proc: subprocess.Popen[bytes]) -> dict[str, list[Any]]:
    """Batches of transfers, each waited for, until the node exits; what was seen
    committed (and where) before it did."""
    committed: dict[str, list[Any]] = {}
    nonce = 0
    deadline = time.monotonic() + FEED_S
    while proc.poll() is None and time.monotonic() < deadline:
        txs = [transfer(net, nonce + i) for i in range(BATCH)]
        try:
            hashes = net.submit(NODE, txs)
            nonce += BATCH
            wait_for(
                lambda: proc.poll() is not None or not net.status(NODE)["mempool_txs"],
                PATIENCE_S,
                "the batch to commit",
            )
            committed.update(where_committed(net, hashes))
        except httpx.HTTPError:  # the node stops: its API first, its process after
            try:
                proc.wait(STOP_S)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"{NODE}'s API failed but the node runs on") from None
    return committed


def after_restart(net: LiveNet) -> dict[str, Any]:
    """A transfer commits on the restarted node; its tip at start and at the end."""
    tip = net.height(NODE)
    tx = transfer(net, net.nonce(NODE, net.faucet))
    assert net.submit(NODE, [tx]) == [tx_id(tx)]
    wait_for(lambda: net.committed(NODE, tx_id(tx)), PATIENCE_S, "a commit after the restart")
    return {"tip_at_restart": tip, "height_after": net.height(NODE)}


def main(work: Path, small: int, large: int) -> None:
    disk = work / "disk"
    disk.mkdir()
    mount_tmpfs(disk, small)
    facts: dict[str, Any] = {}
    with live_net(disk / "devnet", 1, "pbft") as net:
        proc = start_node(net, work / "first.err")
        committed = feed_until_stopped(net, proc)
        facts["exit_status"] = proc.wait(STOP_S)
        facts["stderr"] = (work / "first.err").read_text(errors="replace")
        facts["log"] = net.log(NODE)
        facts["committed"] = committed
        mount_tmpfs(disk, large, remount=True)
        start_node(net, work / "second.err")
        facts["after_restart"] = where_committed(net, [bytes.fromhex(h) for h in committed])
        facts.update(after_restart(net))
    (work / "facts.json").write_text(json.dumps(facts))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
