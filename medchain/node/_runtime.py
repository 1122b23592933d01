"""The networked node: one asyncio loop owns the consensus engine, the mempool, the
stores and the HTTP API of one organisation's node.

Everything runs on the loop's thread: frames from peers, timers, API requests and
the engine's actions. That keeps the SQLite stores single-threaded and the engine's
inputs totally ordered, as the sans-IO contract wants. What the engine signs passes
through the consensus WAL (`SignLog`) before it leaves. The one exception is checking
transactions' signatures, which costs up to a ring verification each: that runs in the
verifier's worker threads, and only its outcome comes back to the loop (`Admission`
for transactions, `ConsensusInbox` for the blocks in consensus messages)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from medchain.anchor import AnchorSettings
from medchain.app import TxRejected, decode_tx
from medchain.consensus import (
    Action,
    BftEngine,
    Broadcast,
    CheckpointCertified,
    Committed,
    CompactOrdering,
    EngineConfig,
    Event,
    MessageReceived,
    Ordering,
    Proposal,
    ProposalComing,
    ReportEvidence,
    Send,
    SetTimer,
    Start,
    Timer,
    TimerFired,
    engine_kind,
    quorum_size,
    unwire,
)
from medchain.crypto import AccountKeys, load_keys
from medchain.node._admission import Admission, AdmissionStats, RateLimited, Source
from medchain.node._anchoring import Anchoring, AnchoringStatus
from medchain.node._backfill import Backfill
from medchain.node._blobs import BLOB_CHANNEL, NetworkBlobStore, PeerBlobs, open_blob_store
from medchain.node._bodies import BODIES_FILE, Bodies, BodyLedger
from medchain.node._config import (
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    WAL_FILE,
    NodeConfig,
    read_config,
)
from medchain.node._disclosure_commits import DisclosureCommitter, commit_interval_s
from medchain.node._disclosure_log import DISCLOSURES_FILE, SqliteDisclosureLog
from medchain.node._disk_reserve import hold_disk_reserve, release_disk_reserve
from medchain.node._erasures import ERASED_FILE, ErasedBlobs, ErasureGuard
from medchain.node._genesis_file import genesis_hash, read_genesis
from medchain.node._inbox import ConsensusInbox
from medchain.node._ledger_app import LedgerApp
from medchain.node._localchain import GENESIS_FILE, STORE_FILE, wall_clock_ms
from medchain.node._metrics import NodeMetrics
from medchain.node._ordering_relay import ORDERING_CHANNEL, OrderingRelay, RelayStats
from medchain.node._signlog import SignLog
from medchain.node._snapshot_files import SnapshotFiles
from medchain.node._snapshot_sync import (
    SNAPSHOT_CHANNEL,
    SnapshotPeers,
    SnapshotStats,
    export_snapshot_metrics,
)
from medchain.node._snapshots import Snapshotter
from medchain.node._store_upkeep import StoreUpkeep
from medchain.node._verifier import Verifier
from medchain.offchain import BlobStore
from medchain.p2p import PeerInfo, Transport, TransportStats
from medchain.store import ChainStore, DiskFull
from medchain.types import (
    Block,
    DecodeError,
    Genesis,
    MedchainError,
    NodeStatus,
    PeerStatus,
    Receipt,
    Tx,
    decode,
    encode,
    tx_id,
)

log = logging.getLogger("medchain.node")

CONSENSUS_CHANNEL = 1
TX_CHANNEL = 2
MAX_GOSSIP_BATCH = 2_000
_RATE_WINDOW_S = 10.0
_REFUSAL_LOG_INTERVAL_S = 60.0
SEND_BODY_FOR_S = 1.0
"""How long after a client handed this node a transaction its orderings carry the
body: gossip reaches the peers within milliseconds, but under load their signature
checks queue for hundreds; past this they hold it, or ask for it."""
_ENGINE_COUNTERS = (
    "dropped_malformed",
    "dropped_bad_signature",
    "dropped_unknown_sender",
    "dropped_duplicate",
    "dropped_stale",
    "equivocations",
    "invalid_proposals",
    "checkpoint_mismatches",
)
"""EngineStats fields served at /metrics (round changes and synced blocks have their own)."""


def network_id(genesis: Genesis) -> str:
    """What peers compare in their hello: the chain and the exact genesis."""
    return f"{genesis.chain_id}/{genesis_hash(genesis).hex()[:16]}"


def open_transport(
    keys: AccountKeys,
    cert_pem: bytes,
    genesis: Genesis,
    config: NodeConfig,
    on_frame: Callable[[bytes, bytes], None],
    on_peer_change: Callable[[bytes, bool], None] | None,
) -> Transport:
    """The node's P2P transport as its config says (the node's, or a joining node's
    before the node opens)."""
    return Transport(
        keys,
        cert_pem,
        network_id(genesis),
        config.p2p_host,
        config.p2p_port,
        [PeerInfo(p.key, p.cert_pem, p.host, p.port, p.name) for p in config.peers],
        on_frame=on_frame,
        on_peer_change=on_peer_change,
        max_frame_bytes=config.max_frame_bytes,
        max_handshakes=config.p2p_max_handshakes,
        max_handshakes_per_address=config.p2p_max_handshakes_per_address,
        refusal_log_interval=config.p2p_refusal_log_interval_s,
    )


class NodeFailed(MedchainError):
    code = "node_failed"


async def _first(*waits: Coroutine[Any, Any, Any]) -> None:
    """Wait until the first of `waits` is done; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


class Node:
    """One node process: `await node.start()`, then `until_stopped(stop)`, then
    `close()` (the CLI serves the HTTP API in between)."""

    def __init__(
        self,
        home: Path,
        config: NodeConfig | None = None,
        *,
        snapshot_stats: SnapshotStats | None = None,
    ) -> None:
        """`snapshot_stats`: what the snapshot channel counted while this node joined
        (`join_from_snapshot`), carried on in its /metrics."""
        self.home = home
        self.config = config if config is not None else read_config(home)
        hold_disk_reserve(home)  # first: on a disk still full, refuse before anything
        self._genesis = read_genesis(home / GENESIS_FILE)
        self.keys: AccountKeys = load_keys(home / NODE_KEY_FILE)
        self.cert_pem = (home / NODE_CERT_FILE).read_bytes()
        store = self._open_ledger()
        self.metrics = NodeMetrics()
        # filling towards its bound is growth too: told apart from a leak by this gauge
        self.metrics.state_cache_bytes.set_function(lambda: store.state.cache.size_bytes)
        self.validator = self.keys.public_key in self.app.validators()
        self._peer_names = {p.key: p for p in self.config.peers}
        self.transport = self._open_transport()
        self._open_bodies(store)
        self._open_snapshots(store, snapshot_stats)
        self.upkeep = StoreUpkeep(
            self.home / STORE_FILE,
            self.metrics.registry,
            every_blocks=self.config.store_maintain_blocks,
            wal_max_bytes=self.config.store_wal_max_bytes,
            on_disk_full=self.disk_full,
        )
        """The chain store's WAL checkpoints and compaction, between commits."""
        self._export_network_metrics()
        self._open_admission()
        self._init_loop_state()
        self.anchoring = self._build_anchoring()
        self._anchoring_task: asyncio.Task[None] | None = None
        self._open_disclosures()

    def _open_ledger(self) -> ChainStore:
        """The chain store, the contracts over it, the consensus WAL and the engine."""
        store = ChainStore(
            self.home / STORE_FILE,
            chain_id=self._genesis.chain_id,
            genesis_hash=genesis_hash(self._genesis),
            state_cache_bytes=self.config.state_cache_mb * 2**20,
            sole_writer=True,
        )
        self.app = LedgerApp(
            self._genesis,
            store,
            max_txs=self.config.mempool_max_txs,
            max_bytes=self.config.mempool_max_bytes,
        )
        self.signlog = SignLog(self.home / WAL_FILE)
        self.snapshots = Snapshotter(
            store, self.home, self.config.snapshot_interval, self.config.snapshot_keep
        )
        self.engine = BftEngine(
            EngineConfig(
                chain_id=self._genesis.chain_id,
                kind=engine_kind(self._genesis.params.consensus),
                block_interval_ms=self.config.block_interval_ms,
                round_timeout_ms=self.config.round_timeout_ms,
                proposal_window_ms=self.config.proposal_window_ms,
                checkpoint_interval=self._genesis.params.checkpoint_interval,
            ),
            self.keys,
            self.app,
        )
        return store

    def _open_transport(self) -> Transport:
        return open_transport(
            self.keys,
            self.cert_pem,
            self._genesis,
            self.config,
            self._on_frame,
            self._on_peer_change,
        )

    def _open_bodies(self, store: ChainStore) -> None:
        """Record bodies: the blob store, fetching from peers, and who uploaded what."""
        local = open_blob_store(self.home, self.config)
        self.erased = ErasedBlobs(self.home / ERASED_FILE, local)
        """Erased records' ciphertexts: deleted at commit, never taken in again."""
        self.peer_blobs = PeerBlobs(
            ErasureGuard(local, self.erased),
            self.transport,
            self.metrics,
            max_frame_bytes=self.config.max_frame_bytes,
            names={key: peer.name for key, peer in self._peer_names.items()},
        )
        """Channel 3: record bodies this node misses, fetched from its peers."""
        self._blobs = NetworkBlobStore(self.peer_blobs.store, self.peer_blobs)
        self.bodies = Bodies(
            self.peer_blobs.store,
            BodyLedger(self.home / BODIES_FILE),
            self.metrics.registry,
            quota_bytes=self.config.upload_quota_bytes,
            grace_s=self.config.body_grace_s,
        )
        """Who uploaded which body, what committed blocks name, and the collector."""
        self.bodies.erased = self.erased
        self.bodies.catch_up(store)
        self.erased.sync(self.app.ledger.state)  # what a snapshot or a lost file missed
        self.app.vitals_index()  # caught up with the stored blocks before consensus runs
        self.app.fleet_index()
        self.app.before_store = self._before_store
        self.peer_blobs.on_kept = self.bodies.kept_from_peer
        self.bodies.on_disk_full = self.peer_blobs.on_disk_full = self.disk_full
        self._collector: asyncio.Task[None] | None = None

    def _before_store(self, block: Block, receipts: Sequence[Receipt]) -> None:
        """What the block names and erases, learnt before it is stored."""
        self.bodies.note_block(block, receipts)
        self.erased.note_block(block, receipts)

    def _open_snapshots(self, store: ChainStore, stats: SnapshotStats | None) -> None:
        """Channel 4: this node's snapshots and blocks for peers, and the blocks below
        the height it joined at (if it did), fetched from them."""
        self.snapshot_peers = SnapshotPeers(
            SnapshotFiles(self.home),
            self._stored_block,
            self.transport,
            stats=stats,
            max_answer_bytes=self.config.max_frame_bytes,
            names={key: peer.name for key, peer in self._peer_names.items()},
        )
        export_snapshot_metrics(self.metrics, lambda: self.snapshot_peers.stats)
        self.backfill = Backfill(
            store,
            self.snapshot_peers,
            self.transport.connected,
            lambda height: None if self.anchoring is None else self.anchoring.final_anchor(height),
            on_disk_full=self.disk_full,
        )
        self._backfill_task: asyncio.Task[None] | None = None
        Gauge(
            "medchain_store_base_height",
            "Lowest block height held: above 0 while the blocks below the snapshot this "
            "node joined from are fetched",
            registry=self.metrics.registry,
        ).set_function(lambda: self.backfill.base_height)

    def _open_disclosures(self) -> None:
        """The log of the reads this node serves, and the commitments of its head."""
        self.disclosures = SqliteDisclosureLog(
            self.home / DISCLOSURES_FILE, self.keys.address, on_disk_full=self.disk_full
        )
        self.disclosure_commits = DisclosureCommitter(
            self.disclosures,
            self.app,
            self.keys,
            self.config.api_url,
            self.submit,
            commit_interval_s(self.config.extra),
        )
        self._disclosure_task: asyncio.Task[None] | None = None

    def _stored_block(self, height: int) -> bytes | None:
        block = self.app.store.block_at(height)
        return None if block is None else encode(block)

    def _export_network_metrics(self) -> None:
        self.metrics.export_stats(
            "medchain_p2p",
            "P2P transport",
            lambda: self.transport.stats,
            [f.name for f in dataclasses.fields(TransportStats)],
        )
        self.metrics.export_counts(
            "medchain_p2p_connections_refused",
            "P2P connections refused during their handshake, by cause, since start",
            "cause",
            self.transport.refused_by_cause,
        )
        self.metrics.export_stats(
            "medchain_consensus", "Consensus engine", lambda: self.engine.stats, _ENGINE_COUNTERS
        )

    def _open_admission(self) -> None:
        """Signature checks off the loop, for transactions and for consensus blocks."""
        self.verifier = Verifier(self.app.signatures, self.config.admission.workers or None)
        """Signature checks of transactions, in worker threads (see `Admission`)."""
        self.admission = Admission(
            self.app.mempool, self.verifier, self.config.admission, preflight=self.app.preflight
        )
        self.relay = OrderingRelay(
            self.transport, self._pending_tx, self._genesis.params.max_block_txs
        )
        """AFBFT orderings sent and received by their transactions' ids."""
        self.inbox = ConsensusInbox(
            self._genesis.chain_id,
            lambda: self.app.ledger,
            self.verifier,
            self.admission.peers,
            self._deliver_consensus,
            self._peer_name,
            self.relay,
            self._ordering_coming,
        )
        self._export_admission_metrics()

    def _init_loop_state(self) -> None:
        """What the event loop's callbacks keep between them."""
        self._gossip_tasks: set[asyncio.Task[None]] = set()
        self._peer_refusals: dict[str, tuple[float, int]] = {}
        """Per peer: when its dropped frames were last logged, and how many since."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: dict[bytes, list[asyncio.Future[Receipt]]] = {}
        self._admitted: dict[bytes, float] = {}
        """Monotonic admission time of transactions submitted here (commit latency)."""
        self._arriving: dict[bytes, Tx] = {}
        """Transactions gossiped to this node while they are being admitted, by id."""
        self._gossip: list[bytes] = []
        self._gossip_scheduled = False
        self._commits: deque[tuple[float, int]] = deque()
        self.failed = asyncio.Event()
        """Set when consensus hit an error it cannot go on from (see `failure`)."""
        self.failure: BaseException | None = None
        self._started_ms = wall_clock_ms()
        self._round_changes = 0
        self._closed = False
        self._halted = False
        """Consensus failed: no more events reach the engine (close() still runs)."""
        self._replayed = False
        """The consensus WAL was fed to the engine (once, with its first Start)."""

    # -- NodeService ------------------------------------------------------------------

    @property
    def genesis(self) -> Genesis:
        return self._genesis

    @property
    def chain(self) -> LedgerApp:
        return self.app

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    @property
    def metrics_registry(self) -> CollectorRegistry:
        return self.metrics.registry

    async def submit(self, tx: Tx, client: str | None = None) -> bool:
        """Admit `tx` to the mempool and pass it on to peers. False if it was already
        pending; raises the mempool's error (rejected, full) otherwise, or RateLimited /
        VerifierBusy (see `submit_batch`)."""
        (result,) = await self.submit_batch([tx], client)
        if isinstance(result, MedchainError):
            raise result
        return result

    async def submit_batch(
        self, txs: Sequence[Tx], client: str | None = None
    ) -> list[bool | MedchainError]:
        """Admit each of `txs` on its own, their signatures verified off the loop; per
        transaction True (admitted and passed on to peers), False (already pending) or
        its refusal. `client` is the submitter's address, whose budget of verification
        work pays for those not admitted (None: the node's own, no budget); raises
        RateLimited while that budget is overdrawn and VerifierBusy while the
        verifier's backlog is full, having admitted nothing."""
        try:
            results = await self.admission.admit(txs, Source.client(client))
        except MedchainError:
            self.metrics.txs_rejected.labels("client").inc(len(txs))
            raise
        now = time.monotonic()
        for tx, result in zip(txs, results, strict=True):
            if result is True:
                self._admitted[tx_id(tx)] = now
                self._queue_gossip(tx.encoded)
            elif isinstance(result, MedchainError):
                self.metrics.txs_rejected.labels("client").inc()
        self._update_mempool_metrics()
        return results

    def admission_wait_s(self, client: str) -> float:
        """Seconds until `client` may submit again: 0 unless its budget is overdrawn.
        The API asks once per request that would admit transactions and refuses it if
        not 0: counted as such."""
        wait = self.admission.wait_s(Source.client(client))
        if wait > 0:
            self.admission.stats.clients_rate_limited += 1
        return wait

    async def wait_committed(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        receipt = self.app.receipt(tx_hash)
        if receipt is not None:
            return receipt
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Receipt] = loop.create_future()
        self._waiters.setdefault(tx_hash, []).append(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            return None
        finally:
            waiting = self._waiters.get(tx_hash)
            if waiting is not None:
                with contextlib.suppress(ValueError):
                    waiting.remove(future)
                if not waiting:
                    del self._waiters[tx_hash]

    def is_pending(self, tx_hash: bytes) -> bool:
        return tx_hash in self.app.mempool

    def pending_txs(self, limit: int) -> tuple[Tx, ...]:
        return self.app.mempool.reap(limit)

    def status(self) -> NodeStatus:
        last = self.app.last_block()
        connected = set(self.transport.connected())
        validators = set(self.app.validators())
        peers = tuple(
            PeerStatus(
                key=p.key,
                name=p.name,
                address="" if p.host is None else f"{p.host}:{p.port}",
                connected=p.key in connected,
                validator=p.key in validators,
            )
            for p in self.config.peers
        )
        return NodeStatus(
            name=self.config.name,
            node_key=self.keys.public_key,
            validator=self.validator,
            consensus=self._genesis.params.consensus,
            chain_id=self._genesis.chain_id,
            height=last.header.height,
            latest_hash=last.certificate.block_hash,
            latest_time_ms=last.header.time_ms,
            state_root=last.header.state_root,
            round=self.engine.round,
            primary=self.engine.primary,
            round_changes=self._round_changes,
            syncing=self.syncing,
            peers=peers,
            mempool_txs=len(self.app.mempool),
            mempool_bytes=self.app.mempool.size_bytes,
            started_ms=self._started_ms,
            **self._anchor_status(),
        )

    def _anchor_status(self) -> dict[str, Any]:
        report = None if self.anchoring is None else self.anchoring.status().report
        if report is None:
            return {}
        mismatch = report.first_mismatch
        alarm = "" if mismatch is None else f"height {mismatch.height}: {mismatch.what}"
        return {"anchor_verified_height": report.last_verified_height, "anchor_alarm": alarm}

    def anchoring_status(self) -> AnchoringStatus | None:
        return None if self.anchoring is None else self.anchoring.status()

    def _build_anchoring(self) -> Anchoring | None:
        """Anchoring runs if config.json has an `anchor` section (devnets get one)."""
        section = self.config.extra.get("anchor")
        if section is None:
            return None
        anchoring = Anchoring(
            AnchorSettings.from_json(section),
            self.home,
            self._genesis,
            self.home / STORE_FILE,
            self.app.validators(),
            self.keys.public_key,
            self.metrics.registry,
        )
        self.app.final_anchor = anchoring.final_anchor
        return anchoring

    @property
    def syncing(self) -> bool:
        return self.engine.highest_seen_height > self.engine.height + 1

    # -- running ----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the P2P listener, start consensus (replaying what this node signed
        for the height in progress)."""
        self._loop = asyncio.get_running_loop()
        await self.transport.start()
        await self._wait_for_quorum()
        self._resume_consensus()
        if self.anchoring is not None:
            self._anchoring_task = asyncio.ensure_future(self.anchoring.run())
        self._collector = asyncio.ensure_future(
            self.bodies.run_collector(self.config.body_collect_interval_s)
        )
        self._disclosure_task = asyncio.ensure_future(self.disclosure_commits.run())
        if self.app.store.base_height() > 0:
            self._backfill_task = asyncio.ensure_future(self.backfill.run())
        log.info(
            "%s started at height %d as %s (%s), p2p %s:%d",
            self.config.name,
            self.app.height,
            "validator" if self.validator else "observer",
            self._genesis.params.consensus,
            self.config.p2p_host,
            self.transport.listen_port,
        )

    def _resume_consensus(self) -> None:
        """Start the engine, or resume it (a peer connected: ask what we missed). The
        first time, in the same step, replay what this node signed for the height in
        progress, before any timer or message reaches the fresh engine: woken without
        it, a restarted primary builds a second block for the step it signed before
        the crash (the WAL keeps it off the wire, but the engine then holds two blocks
        of its own, and reports itself)."""
        self._feed(Start(wall_clock_ms()))
        if self._replayed:
            return
        self._replayed = True
        for data in self.signlog.since(self.app.height + 1):
            self._feed(MessageReceived(wall_clock_ms(), data))

    async def _wait_for_quorum(self) -> None:
        """Give the peers a moment to connect before the first proposal, so it is not
        broadcast to nobody (which would cost a round timeout); bounded by one."""
        validators = set(self.app.validators())
        needed = quorum_size(len(validators)) - (1 if self.validator else 0)
        deadline = time.monotonic() + self.config.round_timeout_ms / 1000
        while time.monotonic() < deadline:
            if len(validators.intersection(self.transport.connected())) >= needed:
                return
            await asyncio.sleep(0.02)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._anchoring_task is not None:
            self._anchoring_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._anchoring_task
        if self.anchoring is not None:
            await self.anchoring.close()
        for task in (self._collector, self._backfill_task, self._disclosure_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self.snapshot_peers.close()
        await self.transport.close()
        self.bodies.close()  # first: a collector run still in its thread stops at once
        await self._close_admission()
        await self.upkeep.close()
        self._blobs.close()
        self.erased.close()
        for waiting in self._waiters.values():
            for future in waiting:
                future.cancel()
        self.disclosures.close()
        self.signlog.close()
        self.snapshots.close()
        self.app.close_index()
        self.app.store.close()
        log.info("%s stopped at height %d", self.config.name, self.app.height)

    async def until_stopped(self, stop: asyncio.Event) -> None:
        """Return once `stop` is set or consensus failed (`failed`); raises NodeFailed
        in the second case, or the DiskFull that stopped it."""
        await _first(stop.wait(), self.failed.wait())
        if isinstance(self.failure, DiskFull):
            raise self.failure
        if self.failure is not None:
            raise NodeFailed(
                f"{self.config.name} stopped on an error ({self.failure!r}); see its log. "
                "Restart it: it recovers from its stores and its consensus WAL"
            )

    # -- the engine -------------------------------------------------------------------

    def _feed(self, event: Event) -> None:
        if self._closed or self._halted:
            return
        try:
            actions = self.engine.handle(event)
            self._carry_out(actions)
        except DiskFull as exc:  # nothing was written: the message says what to do
            self._halt(exc)
        except Exception as exc:
            # the round state, the stores and the WAL may disagree now: stop rather
            # than vote on; a restart recovers from the stores and the WAL
            log.exception("consensus failed on %s; stopping the node", type(event).__name__)
            self._halt(exc)

    def _halt(self, exc: BaseException) -> None:
        """Feed the engine nothing more and stop the node (`until_stopped`) on `exc`,
        the first failure."""
        if isinstance(exc, DiskFull):
            release_disk_reserve(self.home)  # room to close the stores and say why
        if self._halted:
            return
        self._halted = True
        self.failure = exc
        self.failed.set()

    def disk_full(self, exc: DiskFull) -> None:
        """Stop the node because a disk it writes to is full; from any thread."""
        loop = self._loop
        if loop is None:
            self._halt(exc)
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: stopped already
            loop.call_soon_threadsafe(self._halt, exc)

    def _carry_out(self, actions: Sequence[Action]) -> None:
        broadcasts = [a for a in actions if isinstance(a, Broadcast)]
        admitted = iter(self.signlog.admit(broadcasts)) if broadcasts else iter(())
        prevented_before = self.signlog.prevented
        for action in actions:
            if isinstance(action, Broadcast):
                self.transport.broadcast(self._outgoing(action, next(admitted)))
                self.metrics.consensus_messages.labels("out").inc()
            elif isinstance(action, Send):
                self.transport.send(action.to, bytes([CONSENSUS_CHANNEL]) + action.data)
                self.metrics.consensus_messages.labels("out").inc()
            elif isinstance(action, SetTimer):
                self._set_timer(action.timer, action.delay_ms)
            elif isinstance(action, Committed):
                self._on_committed(action.block, action.round_changes)
            elif isinstance(action, ReportEvidence):
                self._report(action)
            elif isinstance(action, CheckpointCertified) and self.anchoring is not None:
                self.anchoring.on_certified(action)
        if self.signlog.prevented != prevented_before:
            self.metrics.double_sign_prevented.inc(self.signlog.prevented - prevented_before)
        self.metrics.round.set(self.engine.round)
        changes = self.engine.stats.round_changes
        if changes > self._round_changes:
            self.metrics.round_changes.inc(changes - self._round_changes)
            self._round_changes = changes

    def _outgoing(self, action: Broadcast, data: bytes) -> bytes:
        """The frame a signed message leaves in: an AFBFT ordering by its transactions'
        ids (`relay`), anything else as signed. `data` is what the WAL let out: the
        engine's message, or what this node signed for that step before a restart."""
        signed_now = data is action.data or data == action.data  # `is`: the usual case
        message = action.message if signed_now else unwire(data)
        if isinstance(message, Proposal) and isinstance(message.block, Ordering):
            return self.relay.frame(message, self._fresh_from_client)
        return bytes([CONSENSUS_CHANNEL]) + data

    def _fresh_from_client(self, identity: bytes) -> bool:
        """Did a client hand this node `identity` so recently that its gossip may not
        have reached and been admitted by the peers yet? Its body then travels with
        an ordering that names it (older ones are asked for, if ever lacking)."""
        admitted = self._admitted.get(identity)
        return admitted is not None and time.monotonic() - admitted < SEND_BODY_FOR_S

    def _pending_tx(self, identity: bytes) -> Tx | None:
        """A body this node holds: pending, or gossiped to it and being admitted (an
        ordering's bodies are checked against their ids, and their signatures before
        they are built)."""
        return self.app.mempool.get(identity) or self._arriving.get(identity)

    def _set_timer(self, timer: Timer, delay_ms: int) -> None:
        assert self._loop is not None
        due_ms = wall_clock_ms() + delay_ms
        # the engine sees the timer fire no earlier than it asked for, even if the
        # loop wakes a little early
        self._loop.call_later(
            delay_ms / 1000,
            lambda: self._feed(TimerFired(max(wall_clock_ms(), due_ms), timer)),
        )

    def _report(self, action: ReportEvidence) -> None:
        if not self.validator:
            return
        try:
            tx = self.app.submit_evidence(self.keys, action.evidence)
        except MedchainError as exc:
            log.warning("could not queue evidence: %s", exc.message)
            return
        log.warning(
            "misbehaviour seen: %s queued as %s",
            type(action.evidence).__name__,
            tx_id(tx).hex()[:16],
        )
        self._queue_gossip(tx.encoded)

    def _on_committed(self, block: Block, round_changes: int) -> None:
        height = block.header.height
        now = time.monotonic()
        self.metrics.height.set(height)
        self.metrics.blocks_committed.inc()
        self.metrics.txs_committed.inc(len(block.txs))
        self.metrics.synced_blocks.set(self.engine.stats.synced_blocks)
        self._commits.append((now, len(block.txs)))
        while self._commits and now - self._commits[0][0] > _RATE_WINDOW_S:
            self._commits.popleft()
        span = now - self._commits[0][0] if len(self._commits) > 1 else 0.0
        if span > 0:
            self.metrics.tx_rate.set(sum(n for _, n in list(self._commits)[1:]) / span)
        for tx in block.txs:
            identity = tx_id(tx)
            admitted = self._admitted.pop(identity, None)
            if admitted is not None:
                self.metrics.commit_latency.observe(now - admitted)
            waiting = self._waiters.get(identity)
            if waiting:
                receipt = self.app.receipt(identity)
                for future in waiting:
                    if receipt is not None and not future.done():
                        future.set_result(receipt)
        if len(self._admitted) > 4 * self.config.mempool_max_txs:
            self._admitted.clear()  # admitted here, then dropped unseen: forget them
        self.signlog.prune(height)
        self.snapshots.after_commit(height)
        self.upkeep.after_commit(height)
        self.metrics.syncing.set(1 if self.syncing else 0)
        self._update_mempool_metrics()
        if round_changes:
            log.info("height %d decided after %d round change(s)", height, round_changes)

    def _update_mempool_metrics(self) -> None:
        self.metrics.mempool_txs.set(len(self.app.mempool))
        self.metrics.mempool_bytes.set(self.app.mempool.size_bytes)

    # -- peers ------------------------------------------------------------------------

    def _on_frame(self, peer: bytes, frame: bytes) -> None:
        """A frame from an allowed peer. Whatever it holds, it is handled or dropped and
        counted in /metrics: decoding refuses any malformed bytes with DecodeError
        (deep nesting included), which each channel's handler counts."""
        if not frame:
            self.metrics.unknown_channel_frames.inc()
            return
        channel, payload = frame[0], frame[1:]
        if channel == CONSENSUS_CHANNEL:
            self.metrics.consensus_messages.labels("in").inc()
            self.inbox.receive(peer, payload)  # -> _deliver_consensus, in order
        elif channel == ORDERING_CHANNEL:
            compact = self.relay.on_frame(peer, payload)
            if compact is not None:
                self.metrics.consensus_messages.labels("in").inc()
                self.inbox.receive_ordering(peer, payload, compact)
        elif channel == TX_CHANNEL:
            self._on_gossip(peer, payload)
        elif channel == BLOB_CHANNEL:
            self.peer_blobs.on_frame(peer, payload)
        elif channel == SNAPSHOT_CHANNEL:
            self.snapshot_peers.on_frame(peer, payload)
        else:
            self.metrics.unknown_channel_frames.inc()

    def _on_peer_change(self, peer: bytes, connected: bool) -> None:
        self.metrics.peers.set(len(self.transport.connected()))
        name = self._peer_names[peer].name if peer in self._peer_names else peer.hex()[:16]
        log.info("peer %s %s", name, "connected" if connected else "disconnected")
        if connected:
            self._resume_consensus()
        else:
            self.snapshot_peers.peer_gone(peer)
            self.relay.peer_gone(peer)

    def _on_gossip(self, peer: bytes, payload: bytes) -> None:
        try:
            items = decode(tuple[bytes, ...], payload)
        except DecodeError:
            self.metrics.txs_rejected.labels("peer").inc()
            return
        if len(items) > MAX_GOSSIP_BATCH:
            self.metrics.txs_rejected.labels("peer").inc()
            return
        self._admit_from_peer(peer, list(items))

    def _queue_gossip(self, raw: bytes) -> None:
        self._gossip.append(raw)
        if len(self._gossip) >= MAX_GOSSIP_BATCH:
            self._flush_gossip()
        elif not self._gossip_scheduled and self._loop is not None:
            self._gossip_scheduled = True
            self._loop.call_later(self.config.gossip_delay_ms / 1000, self._flush_gossip)

    def _flush_gossip(self) -> None:
        self._gossip_scheduled = False
        if not self._gossip or self._closed:
            return
        batch, self._gossip = self._gossip, []
        self.transport.broadcast(bytes([TX_CHANNEL]) + encode(tuple(batch), tuple[bytes, ...]))

    # -- admission (node/_admission.py) -------------------------------------------------

    def _peer_name(self, peer: bytes) -> str:
        known = self._peer_names.get(peer)
        return known.name if known is not None else peer.hex()[:16]

    def _ordering_coming(self, compact: CompactOrdering) -> None:
        """The inbox holds an ordering while its bodies are checked: AFBFT's window
        waits for it (see `ProposalComing`)."""
        shell = compact.shell
        self._feed(ProposalComing(wall_clock_ms(), shell.height, shell.round, shell.proposer))

    def _deliver_consensus(self, peer: bytes, payload: bytes, decoded: Proposal | None) -> None:
        """A consensus message whose blocks' signatures were checked (see `inbox`);
        `decoded` for an ordering the relay completed."""
        self._feed(MessageReceived(wall_clock_ms(), payload, peer, decoded))

    def _admit_from_peer(self, peer: bytes, raws: list[bytes]) -> None:
        """Decode a peer's gossiped transactions here; verify and admit them in the
        background, in the order the peer sent them."""
        txs = []
        for raw in raws:
            try:
                txs.append(decode_tx(raw, self._genesis.params))
            except (MedchainError, DecodeError, TxRejected):
                self.metrics.txs_rejected.labels("peer").inc()
        if not txs or self._closed:
            return
        for tx in txs:
            self._arriving[tx_id(tx)] = tx
        task = asyncio.ensure_future(self._admit_gossip(self._peer_name(peer), txs))
        self._gossip_tasks.add(task)
        task.add_done_callback(self._gossip_tasks.discard)

    async def _admit_gossip(self, name: str, txs: list[Tx]) -> None:
        try:
            results = await self.admission.admit(txs, Source.peer(name))
        except RateLimited:
            self.metrics.txs_rejected.labels("peer").inc(len(txs))
            self._log_peer_refusal(name, len(txs))
            return
        finally:
            self._arrived(txs)
        refused = sum(1 for result in results if isinstance(result, MedchainError))
        if refused:
            self.metrics.txs_rejected.labels("peer").inc(refused)
        self._update_mempool_metrics()

    def _arrived(self, txs: list[Tx]) -> None:
        for tx in txs:
            self._arriving.pop(tx_id(tx), None)

    def _log_peer_refusal(self, name: str, count: int) -> None:
        """At most once a minute per peer, with what was dropped since."""
        now = time.monotonic()
        last, dropped = self._peer_refusals.get(name, (-math.inf, 0))
        dropped += count
        if now - last < _REFUSAL_LOG_INTERVAL_S:
            self._peer_refusals[name] = (last, dropped)
            return
        self._peer_refusals[name] = (now, 0)
        log.warning(
            "dropping transactions gossiped by %s: the verification work of the ones it "
            "sent that were not admitted overdrew its budget (%d dropped since last said)",
            name,
            dropped,
        )

    def _export_admission_metrics(self) -> None:
        self.metrics.export_stats(
            "medchain_admission",
            "Admission",
            lambda: self.admission.stats,
            [f.name for f in dataclasses.fields(AdmissionStats)],
        )
        self.metrics.export_stats(
            "medchain_consensus_inbox",
            "Consensus messages whose blocks were checked off the loop",
            lambda: self.inbox,
            ["checked_ahead", "dropped", "orderings_dropped"],
        )
        self.metrics.export_stats(
            "medchain_ordering_relay",
            "AFBFT orderings relayed by transaction ids",
            lambda: self.relay.stats,
            [f.name for f in dataclasses.fields(RelayStats)],
        )
        self.metrics.verification_backlog.set_function(lambda: self.verifier.backlog)

    async def _close_admission(self) -> None:
        for task in list(self._gossip_tasks):
            task.cancel()
        await asyncio.gather(*self._gossip_tasks, return_exceptions=True)
        self.relay.close()
        await self.inbox.close()
        await self.verifier.close()
