"""Multi-process tests of the verification-working dual chain: a devnet anchoring on
its own Ganache while it commits, a block edited in one node's database (detected,
then recovered), and a colluding validator majority rewriting anchored history
(detected by the first audit after it; the honest nodes fork from the last good
anchor). Marked slow; `make test` runs them.

How long an audit takes (`medchain verify` reports it as `elapsed_ms`, on its own
clock, start-up excluded) is a benchmark figure (docs/BENCHMARKS.md, "Detection"): a
test asserting it would measure how busy the machine is."""

from __future__ import annotations

import dataclasses
import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from medchain.anchor import AnchorSettings
from medchain.app import TransferArgs
from medchain.crypto import AccountKeys, format_address, load_keys, merkle_root, signed_tx
from medchain.node import (
    GENESIS_FILE,
    NODE_KEY_FILE,
    STORE_FILE,
    WAL_FILE,
    LedgerApp,
    read_config,
    read_genesis,
    write_config,
)
from medchain.store import ChainStore
from medchain.types import Block, block_hash, decode, encode, tx_id
from tests.node.netharness import PATIENCE_S, STOP_S, LiveNet, live_net, wait_for

pytestmark = pytest.mark.slow

VALIDATORS = ["node0", "node1", "node2", "node3"]


def medchain(*args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
    """The real command line, as an operator or auditor runs it."""
    return subprocess.run(
        [sys.executable, "-m", "medchain.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def final_height(net: LiveNet, name: str) -> int:
    return int(net.anchoring(name)["final_height"])


def wait_final(net: LiveNet, name: str, height: int, timeout_s: float = 2 * PATIENCE_S) -> None:
    wait_for(lambda: final_height(net, name) >= height, timeout_s, f"an anchor >= {height}")


def commit_transfers(net: LiveNet, count: int, name: str = "node0") -> AccountKeys:
    """A fresh account funded, then `count` (at most 256: a sender's pending limit)
    transfers from it, all committed."""
    sender = net.fund(1)[0]
    net.submit(name, net.transfers(count, sender))
    wait_for(lambda: net.nonce(name, sender) == count, PATIENCE_S, f"{count} transfers")
    return sender


def spread_transfers(net: LiveNet, waves: int = 30, name: str = "node0") -> None:
    """Small batches a block apart, so that many blocks (anchored ones among them)
    hold transactions; returns once all are committed."""
    sender = net.fund(1)[0]
    for _ in range(waves):
        height = net.height(name)
        net.submit(name, net.transfers(5, sender))
        net.wait_height([name], height + 1)
    wait_for(lambda: net.nonce(name, sender) == 5 * waves, PATIENCE_S, "the spread transfers")


def stop(net: LiveNet, names: list[str]) -> None:
    for name in names:
        net.signal(name, signal.SIGTERM)
    for name in names:
        net.procs[name].wait(STOP_S)


def test_a_devnet_anchors_while_it_commits_and_verify_checks_every_anchored_height(
    tmp_path: Path,
) -> None:
    with live_net(tmp_path, observers=1, anchoring=True) as net:
        net.start([*VALIDATORS, "node4"])
        commit_transfers(net, 200)
        net.wait_height(VALIDATORS, 40)
        top = min(net.height(n) for n in VALIDATORS)
        wait_final(net, "node0", top - top % 5)
        status = net.anchoring("node1")
        assert status["configured"] and status["sender"]
        senders = sum(net.anchoring(n)["anchors_sent"] for n in VALIDATORS)
        assert sum(net.anchoring(n)["anchors_sent"] > 0 for n in VALIDATORS) >= 2, "rotation"
        assert senders >= top // 5 - 1  # nearly every checkpoint: heights must increase

        result = medchain("verify", "--node", net.url("node1"), "--json")
        assert result.returncode == 0, result.stdout + result.stderr
        report = json.loads(result.stdout)["report"]
        assert report["first_mismatch"] is None and report["invalid_anchors"] == []
        assert report["anchors_total"] >= top // 5 - 1
        assert report["last_verified_height"] >= top - top % 5 - 5
        assert not net.anchoring("node4")["sender"]
        for name in [*VALIDATORS, "node4"]:  # every node's passive check agrees
            passive = net.anchoring(name)["report"]
            assert passive["ok"] and passive["last_verified_height"] > 0
            assert net.metric(name, "medchain_anchor_mismatch") == 0
            assert net.status(name)["anchor_verified_height"] > 0
        assert "anchoring:" not in net.log("node4")  # an observer verifies, sends nothing


def _careful_edit(path: Path, height: int, faucet: AccountKeys, chain_id: str) -> str:
    """What an intruder with database access does: replace the block's first
    transaction, fix the block's tx root and stored hash so the row looks whole."""
    db = sqlite3.connect(path)
    (data,) = db.execute("SELECT data FROM blocks WHERE height = ?", (height,)).fetchone()
    block = decode(Block, bytes(data))
    forged = signed_tx(
        faucet, chain_id, 10**6, "accounts.transfer", TransferArgs(faucet.address, 7, ""), 0
    )
    txs = (forged, *block.txs[1:])
    header = dataclasses.replace(block.header, tx_root=merkle_root([tx_id(tx) for tx in txs]))
    edited = dataclasses.replace(block, header=header, txs=txs)
    db.execute(
        "UPDATE blocks SET data = ?, hash = ? WHERE height = ?",
        (encode(edited), block_hash(header), height),
    )
    db.commit()
    db.close()
    return block_hash(header).hex()


def test_a_block_edited_in_a_nodes_database_is_detected_and_recovered(tmp_path: Path) -> None:
    with live_net(tmp_path, anchoring=True) as net:
        net.start()
        spread_transfers(net)
        top = min(net.height(n) for n in VALIDATORS)
        anchored = [h for h in range(5, top + 1, 5) if net.block("node0", h)["tx_hashes"]]
        assert anchored, "no anchored height holds transactions"
        height = anchored[0]
        wait_final(net, "node3", height)

        stop(net, ["node3"])
        honest = net.block("node0", height)["hash"]
        forged = _careful_edit(
            net.node("node3").home / STORE_FILE, height, net.faucet, net.devnet.chain_id
        )
        assert forged != honest
        net.start(["node3"])

        # passive: the node's own check raises the alarm
        wait_for(
            lambda: net.metric("node3", "medchain_anchor_mismatch") == 1,
            PATIENCE_S,
            "the passive alarm",
        )
        mismatch = net.anchoring("node3")["report"]["first_mismatch"]
        assert mismatch["height"] == height and mismatch["what"] == "block_hash"
        assert "ALARM" in net.log("node3")
        assert net.status("node3")["anchor_alarm"] == f"height {height}: block_hash"
        assert net.status("node0")["anchor_alarm"] == ""
        # active: an auditor finds it from the node's API and the verification chain
        result = medchain("verify", "--node", net.url("node3"), "--json")
        assert result.returncode == 2, result.stdout + result.stderr
        assert json.loads(result.stdout)["report"]["first_mismatch"]["height"] == height
        assert medchain("verify", "--node", net.url("node0")).returncode == 0

        stop(net, ["node3"])
        result = medchain("recover", "--home", str(net.node("node3").home))
        assert result.returncode == 0, result.stdout + result.stderr
        with ChainStore(net.node("node3").home / STORE_FILE) as store:
            assert store.latest_height() < height  # cut back below the edit
        net.start(["node3"])
        target = net.height("node0")
        net.wait_height(["node3"], target)
        assert net.block("node3", height)["hash"] == honest
        wait_for(
            lambda: (
                net.anchoring("node3")["report"] is not None
                and net.anchoring("node3")["report"]["ok"]
            ),
            PATIENCE_S,
            "node3 verified again",
        )
        assert net.metric("node3", "medchain_anchor_mismatch") == 0
        net.assert_agreement(VALIDATORS, target)


def _rewind(home: Path, height: int) -> None:
    """The colluders' tooling: cut a node's chain back to `height` and forget what it
    signed, so its validator can sign a different history from there."""
    genesis = read_genesis(home / GENESIS_FILE)
    old = ChainStore(home / STORE_FILE)
    blocks = list(old.blocks(1, height))
    old.close()
    for suffix in ("", "-wal", "-shm"):
        (home / (STORE_FILE + suffix)).unlink(missing_ok=True)
        (home / (WAL_FILE + suffix)).unlink(missing_ok=True)
    app = LedgerApp(genesis, ChainStore(home / STORE_FILE))
    for block in blocks:
        app.commit(block)
    app.store.close()
    config = read_config(home)  # and no anchoring: it would refuse the rewrite
    write_config(home, dataclasses.replace(config, extra={}))


def test_a_colluding_majority_rewrite_is_found_by_the_first_audit_and_honest_nodes_fork(
    tmp_path: Path,
) -> None:
    with live_net(tmp_path, observers=1, anchoring=True) as net:
        net.start([*VALIDATORS, "node4"])
        keeper = commit_transfers(net, 100)  # an account whose balance the fork keeps
        balance_before = _balance(net, "node0", keeper)
        commit_transfers(net, 100)
        net.wait_height(VALIDATORS, 30)
        top = min(net.height(n) for n in VALIDATORS)
        anchored = top - top % 5
        wait_final(net, "node3", anchored)
        rewrite_from = 5
        colluders = VALIDATORS[:3]
        stop(net, [*VALIDATORS, "node4"])

        for name in colluders:
            _rewind(net.node(name).home, rewrite_from)
        net.start(colluders)
        # their own history: other transfers, other blocks, past the anchored height
        other = net.fund(1)[0]
        net.submit("node0", net.transfers(20, other))
        net.wait_height(colluders, anchored + 5)
        assert net.block("node0", anchored)["hash"] != _stored_hash(net, "node3", anchored)

        # an auditor looking at the colluders' chain (they stopped saying where their
        # anchors are: the auditor knows the consortium's contract)
        published = AnchorSettings.from_json(read_config(net.node("node3").home).extra["anchor"])
        result = medchain(
            "verify",
            "--node",
            net.url("node0"),
            "--eth-url",
            published.rpc_url,
            "--contract",
            published.contract,
            "--json",
        )
        assert result.returncode == 2, result.stdout + result.stderr
        audit = json.loads(result.stdout)
        mismatch = audit["report"]["first_mismatch"]
        assert rewrite_from < mismatch["height"] <= 2 * 5 + rewrite_from
        print(f"the audit found the rewrite in {audit['elapsed_ms']:.0f} ms")

        # the honest operators fork from the last good anchor
        stop(net, colluders)
        observer_key = load_keys(net.node("node4").home / NODE_KEY_FILE).public_key.hex()
        fork_file = tmp_path / "fork-genesis.json"
        result = medchain(
            "fork",
            "--home",
            str(net.node("node3").home),
            "--out",
            str(fork_file),
            "--keep",
            "node3",
            "--add",
            f"node4={observer_key}",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        fork = json.loads(fork_file.read_text())
        origin = fork["fork_of"]
        assert origin["height"] == anchored
        assert origin["block_hash"] == _stored_hash(net, "node3", anchored)
        for name in ("node3", "node4"):
            home = net.node(name).home
            drops = [arg for c in colluders for arg in ("--drop-peer", c)]
            result = medchain(
                "node", "adopt-genesis", "--home", str(home), "--genesis", str(fork_file), *drops
            )
            assert result.returncode == 0, result.stdout + result.stderr
            config = read_config(home)  # the fork's anchors wait for its registration
            write_config(home, dataclasses.replace(config, extra={}))
        net.start(["node3", "node4"])
        net.wait_height(["node3", "node4"], 5)
        assert _balance(net, "node3", keeper) == balance_before
        status = net.status("node3")
        assert status["chain_id"] == fork["chain_id"] != net.devnet.chain_id
        net.assert_agreement(["node3", "node4"], 5)


def _balance(net: LiveNet, name: str, account: AccountKeys) -> int:
    response = net.http.get(f"{net.url(name)}/v1/accounts/{format_address(account.address)}")
    response.raise_for_status()
    return int(response.json()["balance"])


def _stored_hash(net: LiveNet, name: str, height: int) -> str:
    with ChainStore(net.node(name).home / STORE_FILE) as store:
        block = store.block_at(height)
        assert block is not None
        return block_hash(block.header).hex()
