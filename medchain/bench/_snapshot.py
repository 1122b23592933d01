"""Snapshot sync at scale: a store of N entries (the state benchmark's, built once and
reused) makes a snapshot of its tip and serves it over loopback P2P through the snapshot
channel; a fresh process with an empty home joins from it with the node's own join code,
then opens its ledger over the imported state. A benchmark, not a test.

Reports: making the snapshot (seconds, bytes on disk, chunks); the join (seconds from the
joining node's start to its ledger open over the imported state, the bytes it received,
whether its state root is the served one); the joining process's peak resident memory.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from medchain.bench._fresh_process import peak_rss_kib, run_in_fresh_process
from medchain.bench._report import Report, machine
from medchain.bench._state_disk import (
    BENCH_GENESIS,
    bench_block,
    build_state_store,
    open_bench_store,
)
from medchain.crypto import AccountKeys, save_keys
from medchain.node import (
    GENESIS_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    SNAPSHOT_CHANNEL,
    STORE_FILE,
    NodeConfig,
    PeerConfig,
    SnapshotFiles,
    SnapshotPeers,
    create_snapshot,
    free_port_base,
    join_from_snapshot,
    ledger_from_store,
    open_transport,
    write_genesis,
)
from medchain.p2p import node_certificate
from medchain.store import ChainStore
from medchain.types import encode

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    Results = Queue["_JoinFigures"]

_JOIN_WAIT_S = 60.0
"""How long the joining node waits for the serving one to connect, at most."""


@dataclass(frozen=True)
class SnapshotSyncTiming:
    entries: int
    build_s: float | None
    """Building the store in bulk; None when an earlier run's store was reused."""
    height: int
    snapshot_s: float
    """Making the snapshot of the served store's tip (reading the state, writing chunks)."""
    snapshot_bytes: int
    """The snapshot's files on disk: manifest and chunks."""
    chunks: int
    join_s: float
    """From the joining node's start (its transport opened, the serving peer dialled) to
    its ledger open over the imported state."""
    received_bytes: int
    """P2P payload bytes the joining node received: the serving transport's count of
    bytes sent, the joining node being its only peer (frame and TLS headers left out)."""
    fetched_bytes: int
    """The block, manifest and chunks that passed their checks, summed by the joining
    node's snapshot channel."""
    roots_match: bool
    """The joined ledger's state root is the served one."""
    peak_rss_mb: float
    """The joining process's peak resident memory (a fresh process: it only joins)."""


def run_snapshot_bench(
    directory: Path,
    entries: int = 10_000_000,
    progress: Callable[[str, int, int], None] | None = None,
) -> SnapshotSyncTiming:
    """Snapshot the store of `entries` under `directory` (kept for the next run, shared
    with `bench state --store`), then sync it to an empty node in a temporary home."""
    path, build_s = build_state_store(directory, entries, progress)
    serve_home = path.parent
    with open_bench_store(path) as store:
        _ensure_certified_tip(store)
        began = time.perf_counter()
        with store.state_view() as view:
            manifest = create_snapshot(view, serve_home)
        snapshot_s = time.perf_counter() - began
        SnapshotFiles(serve_home).prune(1)
        files = SnapshotFiles(serve_home).path(manifest.height)
        snapshot_bytes = sum(f.stat().st_size for f in files.iterdir())
        with tempfile.TemporaryDirectory(prefix="snapbench-join-") as joiner:
            join = asyncio.run(_serve_a_join(store, serve_home, Path(joiner)))
    joined, received = join
    return SnapshotSyncTiming(
        entries,
        build_s,
        joined.height,
        snapshot_s,
        snapshot_bytes,
        len(manifest.chunks),
        joined.seconds,
        received,
        joined.fetched_bytes,
        joined.height == manifest.height and joined.state_root == manifest.state_root,
        joined.peak_rss_kib / 1024,
    )


def _ensure_certified_tip(store: ChainStore) -> None:
    """A store only just built holds the genesis block alone: a node joins at a later
    block, so add an empty one. (The chain has no validators: a block needs no
    signatures to count as certified.)"""
    tip = store.latest_block()
    if tip.header.height == 0:
        store.commit_block(bench_block(tip, tip.header.state_root), [], {}, {})


class _JoinFigures(NamedTuple):
    """What the joining process measured."""

    seconds: float
    height: int
    fetched_bytes: int
    state_root: bytes
    peak_rss_kib: int


@dataclass(frozen=True)
class _Pair:
    """The two nodes' P2P identities and configs: the joining node dials the server."""

    server_keys: AccountKeys
    server_cert: bytes
    server: NodeConfig
    joiner: NodeConfig

    @classmethod
    def make(cls, joiner_home: Path) -> _Pair:
        server_keys, joiner_keys = AccountKeys.generate(), AccountKeys.generate()
        server_cert = node_certificate(server_keys, "server")
        joiner_cert = node_certificate(joiner_keys, "joiner")
        save_keys(joiner_home / NODE_KEY_FILE, joiner_keys)
        (joiner_home / NODE_CERT_FILE).write_bytes(joiner_cert)
        write_genesis(joiner_home / GENESIS_FILE, BENCH_GENESIS)
        port = free_port_base(2) + 500
        joiner_peer = PeerConfig("joiner", joiner_keys.public_key, joiner_cert)
        server_peer = PeerConfig("server", server_keys.public_key, server_cert, "127.0.0.1", port)
        return cls(
            server_keys,
            server_cert,
            NodeConfig("server", p2p_port=port, peers=(joiner_peer,)),
            NodeConfig("joiner", p2p_port=port + 1, peers=(server_peer,)),
        )


async def _serve_a_join(
    store: ChainStore, serve_home: Path, joiner_home: Path
) -> tuple[_JoinFigures, int]:
    """Serve the snapshots under `serve_home` and the store's blocks while a fresh
    process joins into `joiner_home`; what it measured and the bytes sent to it."""
    pair = _Pair.make(joiner_home)
    channel: SnapshotPeers | None = None

    def on_frame(peer: bytes, frame: bytes) -> None:
        if channel is not None and frame[:1] == bytes([SNAPSHOT_CHANNEL]):
            channel.on_frame(peer, frame[1:])

    def block_bytes(height: int) -> bytes | None:
        block = store.block_at(height)
        return None if block is None else encode(block)

    transport = open_transport(
        pair.server_keys, pair.server_cert, BENCH_GENESIS, pair.server, on_frame, None
    )
    channel = SnapshotPeers(
        SnapshotFiles(serve_home),
        block_bytes,
        transport,
        max_answer_bytes=pair.server.max_frame_bytes,
    )
    await transport.start()
    try:
        joined: _JoinFigures = await asyncio.to_thread(
            run_in_fresh_process, _join, joiner_home, pair.joiner
        )
    finally:
        channel.close()
        await transport.close()
    return joined, transport.stats.bytes_out


def _join(home: Path, config: NodeConfig, results: Results) -> None:
    """In the fresh process: join as `medchain node` does, then open the ledger."""
    began = time.perf_counter()
    joined = asyncio.run(join_from_snapshot(home, config, wait_s=_JOIN_WAIT_S))
    if joined is None:
        raise RuntimeError("the serving node offered no snapshot to join from")
    with open_bench_store(home / STORE_FILE) as store:
        root = ledger_from_store(BENCH_GENESIS, store).state_root()
    join_s = time.perf_counter() - began
    figures = _JoinFigures(join_s, joined.height, joined.stats.bytes_fetched, root, peak_rss_kib())
    results.put(figures)


def snapshot_report(t: SnapshotSyncTiming) -> Report:
    columns = (
        "entries",
        "built in (s)",
        "snapshot: made in (s)",
        "on disk (MB)",
        "chunks",
        "join to ledger open (s)",
        "received (MB)",
        "state root",
        "joiner's peak resident memory (MB)",
    )
    report = Report(f"snapshot sync over loopback P2P — {machine()}", columns)
    report.rows.append(
        (
            f"{t.entries:,}",
            "reused" if t.build_s is None else f"{t.build_s:.1f}",
            f"{t.snapshot_s:.1f}",
            f"{t.snapshot_bytes / 1e6:,.1f}",
            f"{t.chunks:,}",
            f"{t.join_s:.1f}",
            f"{t.received_bytes / 1e6:,.1f}",
            "equal" if t.roots_match else "DIFFERENT",
            f"{t.peak_rss_mb:,.0f}",
        )
    )
    report.notes.append(
        f"at height {t.height:,}; received: P2P payload bytes the serving node sent to the "
        f"joining one (its transport's counter); {t.fetched_bytes / 1e6:,.1f} MB of them "
        "are the checked block, manifest and chunks"
    )
    return report
