"""Joining from a snapshot: a node whose store is empty takes the state at a certified
height from its peers instead of replaying every block since genesis.

`medchain node --home DIR` calls `join_from_snapshot` before it opens the node: when
`snapshot_sync` is on, the store holds no chain and a peer offers a snapshot, it takes
the highest height offered, fetches that block and checks its certificate against the
genesis validators (as the engine checks a synced block), then the manifest against the
block's state root, then every chunk against the manifest (a peer whose answer fails is
refused and the piece fetched from another), and imports the state into the store. The
node then starts at that height; consensus syncs the blocks after it, and `Backfill`
fetches the ones before it. Nothing is written until every chunk passed its check.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from medchain.consensus import EngineKind, engine_kind, quorum_size, verify_certificate
from medchain.crypto import load_keys
from medchain.node._config import NODE_CERT_FILE, NODE_KEY_FILE, NodeConfig
from medchain.node._genesis_file import genesis_hash, read_genesis
from medchain.node._localchain import GENESIS_FILE, STORE_FILE
from medchain.node._runtime import open_transport
from medchain.node._snapshot_checks import verify_manifest
from medchain.node._snapshot_files import SnapshotWriter
from medchain.node._snapshot_sync import (
    SNAPSHOT_CHANNEL,
    Ask,
    SnapshotPeers,
    SnapshotStats,
    SnapshotSyncFailed,
)
from medchain.node._snapshots import import_snapshot
from medchain.store import ChainStore
from medchain.types import Block, Genesis, SnapshotInvalid, SnapshotManifest, decode

log = logging.getLogger("medchain.node.join")

JOIN_WAIT_S = 5.0
"""How long a node with an empty store waits for its peers to connect before it asks
them which snapshots they hold, at most (every peer connected ends it sooner)."""
_POLL_S = 0.2
MAX_HEIGHTS_TRIED = 3
"""Offered heights a joining node tries, highest first, before it gives up."""


@dataclass(frozen=True, slots=True)
class Joined:
    """A node that joined: the height its store starts at, and what its channel counted
    (handed to the node, so its /metrics show what the join refused)."""

    height: int
    stats: SnapshotStats


async def join_from_snapshot(
    home: Path, config: NodeConfig, *, wait_s: float = JOIN_WAIT_S
) -> Joined | None:
    """Fill the empty store of `home` from a snapshot its peers offer; None (and the
    store left as it was) when the node starts from genesis instead: `snapshot_sync`
    off, a store that holds a chain, no peers, or none offering a snapshot. Raises
    SnapshotSyncFailed when peers offer one but none provides a piece that checks."""
    genesis = read_genesis(home / GENESIS_FILE)
    if not config.snapshot_sync or not config.peers or _holds_chain(home, genesis):
        return None
    if engine_kind(genesis.params.consensus) is EngineKind.DPOS:
        log.info("DPoS elects its voters from the state: this node syncs from genesis")
        return None
    keys = load_keys(home / NODE_KEY_FILE)
    stats = SnapshotStats()
    channel: SnapshotPeers | None = None

    def on_frame(peer: bytes, frame: bytes) -> None:
        if channel is not None and frame[:1] == bytes([SNAPSHOT_CHANNEL]):
            channel.on_frame(peer, frame[1:])

    def on_peer_change(peer: bytes, connected: bool) -> None:
        if channel is not None and not connected:
            channel.peer_gone(peer)

    transport = open_transport(
        keys, (home / NODE_CERT_FILE).read_bytes(), genesis, config, on_frame, on_peer_change
    )
    channel = SnapshotPeers(
        None,
        None,
        transport,
        stats=stats,
        max_answer_bytes=config.max_frame_bytes,
        names={p.key: p.name for p in config.peers},
    )
    await transport.start()
    try:
        offers = await wait_for_offers(channel, transport.connected, len(config.peers), wait_s)
        if not offers:
            log.info("no peer offers a snapshot: this node syncs from genesis")
            return None
        height = await fetch_and_import(channel, home, genesis, offers)
    finally:
        channel.close()
        await transport.close()
    return Joined(height, stats)


def _holds_chain(home: Path, genesis: Genesis) -> bool:
    with ChainStore(
        home / STORE_FILE, chain_id=genesis.chain_id, genesis_hash=genesis_hash(genesis)
    ) as store:
        return store.is_initialised


async def wait_for_offers(
    channel: SnapshotPeers,
    connected: Callable[[], tuple[bytes, ...]],
    peers: int,
    wait_s: float,
) -> dict[bytes, tuple[int, ...]]:
    """The snapshots the connected peers offer, once all `peers` are connected or
    `wait_s` has passed (peers that hold none are left out)."""
    deadline = time.monotonic() + wait_s
    while len(connected()) < peers and time.monotonic() < deadline:
        await asyncio.sleep(_POLL_S)
    found = await channel.offers() if connected() else {}
    return {peer: heights for peer, heights in found.items() if heights}


async def fetch_and_import(
    channel: SnapshotPeers, home: Path, genesis: Genesis, offers: dict[bytes, tuple[int, ...]]
) -> int:
    """Import the highest offered snapshot that checks; its height. A height no peer
    provides a checked block, manifest and chunks for (a peer may offer one that does
    not exist) gives way to the next lower one, up to MAX_HEIGHTS_TRIED of them."""
    heights = sorted({h for offered in offers.values() for h in offered}, reverse=True)
    failure: SnapshotSyncFailed | None = None
    for height in heights[:MAX_HEIGHTS_TRIED]:
        holders = sorted(peer for peer, offered in offers.items() if height in offered)
        log.info("joining from the snapshot at height %d (%d peer(s))", height, len(holders))
        try:
            block, path = await fetch_snapshot(channel, home, genesis, height, holders)
        except SnapshotSyncFailed as exc:
            log.warning("the snapshot at height %d was not fetched: %s", height, exc.message)
            failure = exc
            continue
        manifest = await asyncio.to_thread(_import, home, genesis, block, path)
        log.info(
            "joined at height %d: %d entries in %d chunks imported",
            height,
            manifest.entries,
            len(manifest.chunks),
        )
        return height
    assert failure is not None  # offers are never empty here
    raise failure


def _import(home: Path, genesis: Genesis, block: Block, snapshot: Path) -> SnapshotManifest:
    """In a worker thread (a store belongs to the thread that opened it)."""
    with ChainStore(
        home / STORE_FILE, chain_id=genesis.chain_id, genesis_hash=genesis_hash(genesis)
    ) as store:
        return import_snapshot(store, snapshot, block, genesis_hash(genesis))


async def fetch_snapshot(
    channel: SnapshotPeers, home: Path, genesis: Genesis, height: int, holders: Sequence[bytes]
) -> tuple[Block, Path]:
    """The certified block at `height` and the snapshot of it, fetched from `holders`
    and checked piece by piece, kept under `home`'s snapshots (so this node serves it
    in turn); returns the block and the snapshot's directory."""
    validators = tuple(v.public_key for v in genesis.validators)
    block = await channel.fetch(
        Ask.BLOCK,
        height,
        0,
        holders,
        lambda data: certified_block(genesis, validators, height, data),
    )
    refused: set[bytes] = set()
    manifest = await channel.fetch(
        Ask.MANIFEST,
        height,
        0,
        holders,
        lambda data: checked_manifest(block, data),
        refused=refused,
    )
    writer = await asyncio.to_thread(SnapshotWriter, home, manifest, block.header)
    try:
        await channel.fetch_chunks(
            height, [c.size for c in manifest.chunks], holders, writer.add_chunk, refused=refused
        )
        return block, await asyncio.to_thread(writer.finish)
    except BaseException:
        writer.abandon()
        raise


def certified_block(
    genesis: Genesis, validators: tuple[bytes, ...], height: int, data: bytes
) -> Block:
    """`data` decoded as the block at `height` of this chain with a certificate of a
    quorum of `validators`; SnapshotInvalid (or DecodeError) if it is not."""
    block = decode(Block, data)
    if block.header.chain_id != genesis.chain_id or block.header.height != height:
        raise SnapshotInvalid(
            f"asked for block {height} of {genesis.chain_id!r}, got block "
            f"{block.header.height} of {block.header.chain_id!r}"
        )
    if not verify_certificate(genesis.chain_id, block, validators, quorum_size(len(validators))):
        raise SnapshotInvalid(
            f"block {height} does not carry the commit signatures of a quorum of the validators"
        )
    return block


def checked_manifest(block: Block, data: bytes) -> SnapshotManifest:
    """`data` decoded as the manifest of the snapshot at `block`, checked against its
    header's state root; SnapshotInvalid (or DecodeError) if it is not."""
    manifest = decode(SnapshotManifest, data)
    verify_manifest(manifest, block.header)
    return manifest
