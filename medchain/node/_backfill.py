"""The blocks below a joined node's snapshot, fetched from peers in the background so
the node holds the whole audit history again.

Each block is accepted only if it hashes to the `prev_hash` of the block above it, down
from the certified block the node joined at: a hash link is proof enough, whatever
peer sent it. Where the node has anchoring, a block must also match the final anchor
at its height; one that does not stops the backfill with an error (the certified chain
and the verification chain disagree: an operator must look)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable

from medchain.node._snapshot_sync import Ask, SnapshotPeers, SnapshotSyncFailed
from medchain.store import ChainStore, DiskFull, StoreError
from medchain.types import Block, SnapshotInvalid, block_hash, decode

log = logging.getLogger("medchain.node.backfill")

RETRY_S = 5.0
"""Pause before asking again when no peer provided the next block."""


class Backfill:
    """Fetches the blocks below `store.base_height()` down to genesis, one at a time,
    from the connected peers; `run()` returns once the store holds them all (or on a
    block that contradicts a final anchor). Runs on the node's loop, like the store."""

    def __init__(
        self,
        store: ChainStore,
        peers: SnapshotPeers,
        connected: Callable[[], tuple[bytes, ...]],
        final_anchor: Callable[[int], bytes | None] | None = None,
        *,
        on_disk_full: Callable[[DiskFull], None] | None = None,
        retry_s: float = RETRY_S,
    ) -> None:
        """`on_disk_full` is told when a block found the disk full (the node stops);
        the backfill then ends, and resumes when the node starts again."""
        self._store = store
        self._peers = peers
        self._connected = connected
        self._final_anchor = final_anchor
        self._on_disk_full = on_disk_full
        self._retry_s = retry_s
        self.fetched = 0
        """Blocks stored by this backfill."""
        self.base_height = store.base_height()
        """The lowest block held, as of the last block stored (read by /metrics)."""

    async def run(self) -> None:
        base = self._store.base_height()
        if base > 0:
            log.info("fetching the %d block(s) below height %d from peers", base, base)
        while base > 0:
            block = await self._next(base)
            if block is None:
                await asyncio.sleep(self._retry_s)
            elif not self._anchored(block):
                return
            else:
                try:
                    self._store.insert_past_block(block)
                    self.fetched += 1
                except DiskFull as exc:
                    if self._on_disk_full is not None:
                        self._on_disk_full(exc)
                    return
                except StoreError as exc:  # try again later
                    log.warning("could not store block %d: %s", base - 1, exc.message)
                    await asyncio.sleep(self._retry_s)
            base = self.base_height = self._store.base_height()
        log.info("backfill done: the store holds every block down to genesis")

    async def _next(self, base: int) -> Block | None:
        above = self._store.block_at(base)
        assert above is not None  # the store holds every block from its base up
        parent = above.header.prev_hash
        peers = list(self._connected())
        random.shuffle(peers)
        try:
            return await self._peers.fetch(
                Ask.BLOCK, base - 1, 0, peers, lambda data: linked_block(base - 1, parent, data)
            )
        except SnapshotSyncFailed as exc:
            log.info("block %d not fetched yet: %s", base - 1, exc.message)
            return None

    def _anchored(self, block: Block) -> bool:
        height = block.header.height
        anchored = None if self._final_anchor is None else self._final_anchor(height)
        if anchored is None or anchored == block_hash(block.header):
            return True
        log.error(
            "block %d, linked by hash to the certified block this node joined at, "
            "contradicts the final anchor at that height (%s); the backfill stopped: "
            "check the verification chain and the validators",
            height,
            anchored.hex(),
        )
        return False


def linked_block(height: int, parent: bytes, data: bytes) -> Block:
    """`data` decoded as the block at `height` whose header hashes to `parent`;
    SnapshotInvalid (or DecodeError) if it is not."""
    block = decode(Block, data)
    if block.header.height != height or block_hash(block.header) != parent:
        raise SnapshotInvalid(
            f"asked for block {height} with hash {parent.hex()[:16]}, got block "
            f"{block.header.height} with hash {block_hash(block.header).hex()[:16]}"
        )
    return block
