"""The node runtime in process: one validator (a quorum of one) in the test's loop.
The multi-process behaviour is in test_network.py."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
import rlp

from medchain.app import CreateRecordArgs, InvalidSignature, RegisterArgs, Role, TransferArgs
from medchain.client import seal
from medchain.consensus import Broadcast, Kind, Start, Timer, TimerFired, TimerKind
from medchain.crypto import AccountKeys, load_keys, signed_tx
from medchain.node import (
    BODIES_FILE,
    RESERVE_BYTES,
    RESERVE_FILE,
    AdmissionConfig,
    Node,
    NodeFailed,
    RateLimited,
    SnapshotFiles,
    create_devnet,
    free_port_base,
    read_config,
    write_config,
)
from medchain.offchain import cid_for
from medchain.store import ChainStore, DiskFull, disk_full
from medchain.types import Tx, TxFailed, tx_id
from tests.waiting import until

RECIPIENT = AccountKeys.generate()


def _node(
    home: Path, admission: AdmissionConfig | None = None, *, snapshot_interval: int = 1_000
) -> tuple[Node, AccountKeys]:
    base = free_port_base(1)
    devnet = create_devnet(
        home, 1, "pbft", api_port=base, p2p_port=base + 500, block_interval_ms=50
    )
    node_home = devnet.nodes[0].home
    config = read_config(node_home)
    if admission is not None:
        config = dataclasses.replace(config, admission=admission)
    config = dataclasses.replace(config, snapshot_interval=snapshot_interval, snapshot_keep=2)
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


def test_a_call_the_contracts_refuse_is_refused_at_submission(tmp_path: Path) -> None:
    """Admission dry-runs an access-controlled call: a self-declared doctor is told at
    once, and nothing is pending, spent or committed."""

    async def scenario() -> None:
        node, _ = _node(tmp_path)
        await node.start()
        try:
            stranger = AccountKeys.generate()
            args = RegisterArgs(Role.DOCTOR, "Dr. Self", stranger.encryption_public_key)
            tx = signed_tx(stranger, node.genesis.chain_id, 0, "registry.register", args)
            with pytest.raises(TxFailed) as refused:
                await node.submit(tx, "192.0.2.5")
            assert refused.value.code == "wrong_role"
            assert not node.is_pending(tx_id(tx)) and node.chain.receipt(tx_id(tx)) is None
            assert node.chain.identity(stranger.address) is None
        finally:
            await node.close()

    asyncio.run(scenario())


def test_the_state_cache_size_comes_from_the_config(tmp_path: Path) -> None:
    base = free_port_base(1)
    devnet = create_devnet(tmp_path, 1, "pbft", api_port=base, p2p_port=base + 500)
    home = devnet.nodes[0].home
    node = Node(home, dataclasses.replace(read_config(home), state_cache_mb=3))
    try:
        assert node.app.store.state.cache.max_bytes == 3 * 2**20
    finally:
        asyncio.run(node.close())


def test_the_state_cache_size_is_served_at_metrics(tmp_path: Path) -> None:
    async def scenario() -> None:
        node, faucet = _node(tmp_path)
        await node.start()
        try:
            tx = _transfer(node, faucet, 0)
            assert await node.submit(tx)
            assert await node.wait_committed(tx_id(tx), 10) is not None
            cache = node.app.store.state.cache
            served = node.metrics_registry.get_sample_value("medchain_state_cache_bytes")
            assert served == cache.size_bytes > 0
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


def test_a_full_disk_stops_the_node_without_a_traceback_and_a_restart_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The chain store may grow no further (as on a full disk): the node stops with
    DiskFull, storing nothing half; started again with room, it commits from its tip."""

    async def fill_up(node: Node, faucet: AccountKeys) -> tuple[int, bytes]:
        db = node.app.store._conn()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.execute(f"PRAGMA max_page_count = {pages}")
        await node.start()
        try:
            nonce = 0
            while not node.failed.is_set() and nonce < 2_000:
                await node.submit(_transfer(node, faucet, nonce))
                nonce += 1
                await until(lambda: node.failed.is_set() or not node.app.mempool, 30)
            with pytest.raises(DiskFull) as caught:
                await asyncio.wait_for(node.until_stopped(asyncio.Event()), 10)
            assert not (node.home / RESERVE_FILE).exists()  # freed to stop in
            tip = node.app.store.latest_height(), node.app.store.state_root()
        finally:
            await node.close()
        assert str(node.home / "chain.sqlite") in caught.value.message
        return tip

    async def restart(home: Path, faucet: AccountKeys, stopped: tuple[int, bytes]) -> None:
        node = Node(home, read_config(home))
        assert (home / RESERVE_FILE).stat().st_size == RESERVE_BYTES  # held again
        assert (node.app.height, node.status().state_root) == stopped
        await node.start()
        try:
            account = node.chain.account(faucet.address)
            tx = _transfer(node, faucet, account.nonce)
            assert await node.submit(tx)
            receipt = await node.wait_committed(tx_id(tx), 30)
            assert receipt is not None and receipt.ok
            assert node.app.height > stopped[0]
        finally:
            await node.close()

    node, faucet = _node(tmp_path)
    with caplog.at_level("ERROR"):
        stopped = asyncio.run(fill_up(node, faucet))
    assert not [r for r in caplog.records if r.exc_info], "a full disk logs no traceback"
    ChainStore(node.home / "chain.sqlite").close()  # opens as a whole store
    asyncio.run(restart(node.home, faucet, stopped))


def test_a_full_disk_told_from_another_thread_stops_the_node(tmp_path: Path) -> None:
    async def scenario() -> None:
        node, _ = _node(tmp_path)
        await node.start()
        try:
            full = disk_full(node.home / "blobs", "the bodies")
            await asyncio.to_thread(node.disk_full, full)
            with pytest.raises(DiskFull) as caught:
                await asyncio.wait_for(node.until_stopped(asyncio.Event()), 10)
            assert caught.value is full
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


def test_the_p2p_limits_come_from_the_config_and_refusals_are_counted_by_cause(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        base = free_port_base(1)
        devnet = create_devnet(tmp_path, 1, "pbft", api_port=base, p2p_port=base + 500)
        home = devnet.nodes[0].home
        config = dataclasses.replace(read_config(home), p2p_max_handshakes_per_address=2)
        write_config(home, config)
        node = Node(home)
        await node.start()
        sockets = []
        try:
            for _ in range(3):  # two silent sockets take what one address may hold
                sockets.append(
                    await asyncio.open_connection(
                        config.p2p_host, config.p2p_port, local_addr=("127.0.0.7", 0)
                    )
                )
            refused = {"cause": "address_busy"}
            await until(
                lambda: node.metrics_registry.get_sample_value(
                    "medchain_p2p_connections_refused_total", refused
                ),
                what="the third socket refused",
            )
            assert (
                node.metrics_registry.get_sample_value(
                    "medchain_p2p_connections_refused_total", refused
                )
                == 1
            )
            assert (
                node.metrics_registry.get_sample_value(
                    "medchain_p2p_connections_refused_total", {"cause": "busy"}
                )
                == 0
            )
            assert (
                node.metrics_registry.get_sample_value("medchain_p2p_handshakes_refused_total") == 1
            )
        finally:
            for _, writer in sockets:
                writer.close()
            await node.close()

    asyncio.run(scenario())


def test_the_body_ledger_follows_commits_and_a_restart_catches_up_first(tmp_path: Path) -> None:
    """A body uploaded with its transaction is named once the block commits (the
    ledger is told before the block is stored); a block committed while the ledger
    was gone is scanned when the node starts again, before its collector runs."""

    async def first_run(node: Node, faucet: AccountKeys) -> str:
        register = RegisterArgs(
            Role.PATIENT, "", faucet.encryption_public_key, b"", faucet.ring_public_key
        )
        chain_id = node.genesis.chain_id
        await node.submit(signed_tx(faucet, chain_id, 0, "registry.register", register))
        sealed = seal(b"{}", b"context", {faucet.address: faucet.encryption_public_key})
        cid = cid_for(sealed.ciphertext)
        args = CreateRecordArgs(
            faucet.address, "Observation", cid, sealed.ciphertext_hash, sealed.wraps
        )
        tx = signed_tx(faucet, chain_id, 1, "records.create", args)
        held: list[int] = []

        async def admit() -> None:  # the quota is reserved before the admission
            held.append(node.bodies.usage(faucet.address_text))
            await node.submit(tx)

        await node.bodies.upload(faucet.address_text, [sealed.ciphertext], admit)
        assert held == [len(sealed.ciphertext)]
        receipt = await node.wait_committed(tx_id(tx), 30)
        assert receipt is not None and receipt.ok
        assert node.bodies.is_named(cid) and node.bodies.usage(faucet.address_text) == 0
        stored = node.metrics_registry.get_sample_value("medchain_uploads_stored_total")
        assert stored == 1
        return cid

    async def scenario() -> None:
        node, faucet = _node(tmp_path)
        await node.start()
        try:
            cid = await first_run(node, faucet)
        finally:
            await node.close()
        (node.home / BODIES_FILE).unlink()  # as if it never saw those blocks
        again = Node(node.home)
        try:
            assert again.bodies.is_named(cid)  # caught up in the constructor
            assert again.blobs.has(cid)
        finally:
            await again.close()

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


def test_a_restarted_primary_replays_its_wal_before_a_peer_can_wake_it(tmp_path: Path) -> None:
    """A validator killed after proposing restarts with a fresh engine and its consensus
    WAL. A peer connects while it still waits for a quorum of them, before `start` has
    replayed the WAL: that must not wake the engine without the replay, or the new-round
    timer makes it build a second block for the step it signed before the crash (kept
    off the wire by the WAL, but the engine then counts its own "equivocation" and
    queues evidence against itself)."""

    async def scenario() -> None:
        base = free_port_base(4)
        devnet = create_devnet(
            tmp_path, 4, "pbft", api_port=base, p2p_port=base + 500, block_interval_ms=50
        )
        before_crash = [Node(spec.home) for spec in devnet.nodes]
        for node in before_crash:
            node.engine.handle(Start(0))
        primary = next(n for n in before_crash if n.engine.primary == n.keys.public_key)
        signed = primary.engine.handle(TimerFired(0, Timer(TimerKind.NEW_ROUND, 1, 0)))
        broadcasts = [a for a in signed if isinstance(a, Broadcast)]
        assert Kind.PROPOSAL in [b.kind for b in broadcasts]
        primary.signlog.admit(broadcasts)  # durable and sent; then the process is killed
        for node in before_crash:
            await node.close()

        peer = Node(next(s.home for s in devnet.nodes if s.home != primary.home))
        config = dataclasses.replace(read_config(primary.home), round_timeout_ms=5_000)
        restarted = Node(primary.home, config)
        await peer.start()
        try:
            await restarted.start()  # one peer of the two it waits for: a round timeout
            assert peer.keys.public_key in restarted.transport.connected()
            assert restarted.engine.stats.equivocations == 0
            assert restarted.signlog.prevented == 0, "it signed a second block for the step"
            equivocations = restarted.metrics_registry.get_sample_value(
                "medchain_consensus_equivocations_total"
            )
            assert equivocations == 0
        finally:
            await restarted.close()
            await peer.close()

    asyncio.run(scenario())


def test_a_node_makes_snapshots_at_its_interval_and_keeps_the_last(tmp_path: Path) -> None:
    async def scenario() -> None:
        node, faucet = _node(tmp_path, snapshot_interval=2)
        files = SnapshotFiles(node.home)
        await node.start()
        try:
            for nonce in range(8):  # one at a time: a block each
                tx = _transfer(node, faucet, nonce)
                assert await node.submit(tx)
                assert await node.wait_committed(tx_id(tx), 60) is not None
            await until(
                lambda: len(files.heights()) == 2 and files.heights()[-1] >= 6,
                what="the last two snapshots",
            )
            for height in files.heights():
                block = node.chain.store.block_at(height)
                assert height % 2 == 0 and block is not None
                assert files.manifest(height).state_root == block.header.state_root
        finally:
            await node.close()

    asyncio.run(scenario())


def test_pending_txs_lists_the_mempool_oldest_first(tmp_path: Path) -> None:
    """What GET /v1/mempool lists: the mempool's transactions in arrival order, as many
    as asked (read before the node starts proposing, so nothing commits them)."""
    node, faucet = _node(tmp_path)
    try:
        txs = [_transfer(node, faucet, n) for n in range(3)]
        for tx in txs:
            assert node.app.mempool.add(tx)
        assert node.pending_txs(2) == tuple(txs[:2])
        assert node.pending_txs(10) == tuple(txs)
        assert node.pending_txs(0) == ()
    finally:
        asyncio.run(node.close())
