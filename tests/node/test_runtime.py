"""The node runtime in process: one validator (a quorum of one) in the test's loop.
The multi-process behaviour is in test_network.py."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
import rlp

from medchain.app import InvalidSignature, TransferArgs
from medchain.crypto import AccountKeys, load_keys, signed_tx
from medchain.node import (
    AdmissionConfig,
    Node,
    NodeFailed,
    RateLimited,
    create_devnet,
    free_port_base,
    read_config,
)
from medchain.types import Tx, tx_id

RECIPIENT = AccountKeys.generate()


def _node(home: Path, admission: AdmissionConfig | None = None) -> tuple[Node, AccountKeys]:
    base = free_port_base(1)
    devnet = create_devnet(
        home, 1, "pbft", api_port=base, p2p_port=base + 500, block_interval_ms=50
    )
    node_home = devnet.nodes[0].home
    config = read_config(node_home)
    if admission is not None:
        config = dataclasses.replace(config, admission=admission)
    return Node(node_home, config), load_keys(devnet.faucet_key)


def _transfer(node: Node, keys: AccountKeys, nonce: int) -> Tx:
    args = TransferArgs(RECIPIENT.address, 1, "")
    return signed_tx(keys, node.genesis.chain_id, nonce, "accounts.transfer", args)


def test_a_node_admits_commits_and_reports(tmp_path: Path) -> None:
    async def scenario() -> None:
        node, faucet = _node(tmp_path)
        await node.start()
        try:
            txs = [_transfer(node, faucet, n) for n in range(3)]
            assert [await node.submit(tx) for tx in txs] == [True, True, True]
            assert await node.submit(txs[0]) is False  # already pending
            receipts = [await node.wait_committed(tx_id(tx), 10) for tx in txs]
            assert all(r is not None and r.ok for r in receipts), receipts
            assert not node.is_pending(tx_id(txs[0]))
            status = node.status()
            assert status.validator and status.consensus == "pbft"
            assert status.height >= 1 and status.mempool_txs == 0
            assert status.latest_hash == node.chain.latest_block().certificate.block_hash
            text = node.metrics_registry.get_sample_value("medchain_txs_committed_total")
            assert text == 3
        finally:
            await node.close()

    asyncio.run(scenario())


def test_a_consensus_error_stops_the_node_instead_of_voting_on(tmp_path: Path) -> None:
    async def scenario() -> None:
        node, faucet = _node(tmp_path)

        def broken(block: object) -> None:
            raise OSError("disk full")

        node.app.commit = broken  # type: ignore[method-assign]
        await node.start()
        try:
            await node.submit(_transfer(node, faucet, 0))
            with pytest.raises(NodeFailed, match="disk full"):
                await asyncio.wait_for(node.until_stopped(asyncio.Event()), 10)
            assert node.failed.is_set()
        finally:
            await node.close()

    asyncio.run(scenario())


def test_waiting_for_an_unknown_transaction_times_out(tmp_path: Path) -> None:
    async def scenario() -> None:
        node, _ = _node(tmp_path)
        await node.start()
        try:
            assert await node.wait_committed(b"\x00" * 32, 0.1) is None
        finally:
            await node.close()

    asyncio.run(scenario())


def test_forgeries_cost_their_sender_not_the_node(tmp_path: Path) -> None:
    """A client's forged transactions are verified off the loop and refused, then the
    client waits; gossiped transactions are admitted off the loop too."""

    async def scenario() -> None:
        node, faucet = _node(tmp_path, AdmissionConfig(client_rate=10, client_burst=50))
        await node.start()
        try:
            forged = [
                dataclasses.replace(_transfer(node, AccountKeys.generate(), 0), signature=bytes(64))
                for _ in range(60)
            ]
            results = await node.submit_batch(forged, "192.0.2.66")
            assert all(isinstance(r, InvalidSignature) for r in results)
            with pytest.raises(RateLimited, match="retry in 2 s"):
                await node.submit(_transfer(node, faucet, 0), "192.0.2.66")
            assert node.admission_wait_s("192.0.2.66") > 0
            assert await node.submit(_transfer(node, faucet, 0), "192.0.2.77")
            gossiped = _transfer(node, faucet, 1)
            node._on_gossip(b"\x0b" * 32, rlp.encode([gossiped.encoded]))
            receipt = await node.wait_committed(tx_id(gossiped), 10)
            assert receipt is not None and receipt.ok
            sample = node.metrics_registry.get_sample_value
            refused = sample("medchain_admission_clients_rate_limited_total")
            assert refused == 2  # the submission, and the API's question before a request
            assert sample("medchain_admission_signatures_failed_total") == 60
            assert sample("medchain_verification_backlog") == 0
        finally:
            await node.close()

    asyncio.run(scenario())
