"""The ciphertexts of erased records: deleted when the erasure commits, never taken in
again.

`records.erase` names the ciphertexts of the record's versions and research copies in
its `record.erased` event. `ErasedBlobs.note_block` (called with each block's receipts
before the block is stored) adds them to a node-local list and deletes them from the
node's blob store (an IPFS backend unpins and forgets them). `ErasureGuard` wraps the
store so that an erased CID is never stored, served to a peer or fetched from one
again, and `Bodies` refuses an upload naming one before anything is reserved.

A node that joined from a snapshot (or whose list file was lost) never saw the
erasures below its first block: `sync` walks the chain's counted list of erasures
beyond what the file records, so the list comes back from the state, not from peers.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from medchain.app import RecordErased, State, erased_cids, erasure_at, erasure_count
from medchain.node._sqlite_writes import full_disk_raised, write_transaction
from medchain.offchain import (
    DEFAULT_MAX_BLOB_BYTES,
    BlobStore,
    CollectableBlobStore,
    IpfsBlobStore,
    cid_for,
)
from medchain.types import Block, MedchainError, Receipt

log = logging.getLogger("medchain.node.erasures")

ERASED_FILE = "erased.sqlite"


def erased_error(cid: str) -> RecordErased:
    return RecordErased(
        f"blob {cid} belongs to a record its patient erased: this node deleted it and "
        "neither stores nor serves it again"
    )


class ErasedBlobs:
    """The node-local list of erased CIDs (an SQLite file) and their deletion from
    `store`. Thread-safe: uploads and peers ask from worker threads."""

    def __init__(self, path: Path | str, store: BlobStore) -> None:
        self.path = Path(path)
        self.store = store
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        with full_disk_raised(self.path, "the list of erased blobs"):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(
                """
                CREATE TABLE IF NOT EXISTS erased (cid TEXT PRIMARY KEY) WITHOUT ROWID;
                CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
                """
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def is_erased(self, cid: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT 1 FROM erased WHERE cid = ?", (cid,)).fetchone()
        return row is not None

    def refuse(self, cids: Iterable[str]) -> None:
        """RecordErased naming the first of `cids` that is erased."""
        for cid in cids:
            if self.is_erased(cid):
                raise erased_error(cid)

    @property
    def synced(self) -> int:
        """How many of the chain's erasures `sync` has applied."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'synced'").fetchone()
        return 0 if row is None else int(row[0])

    def note_block(self, block: Block, receipts: Sequence[Receipt]) -> None:
        """Erase what the block's erasures name (before the block is stored)."""
        cids = erased_cids(receipts)
        if cids:
            self.erase(cids)
            log.info("block %d erased %d blob(s)", block.header.height, len(cids))

    def sync(self, state: State) -> int:
        """Erase what the chain's erasures beyond `synced` name; returns how many
        erasures that was. Called before the node serves anything."""
        start, count = self.synced, erasure_count(state)
        for index in range(start, count):
            self.erase(erasure_at(state, index).cids)
        if count > start:
            with self._lock, write_transaction(self._db, self.path, "the erasures synced"):
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES ('synced', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (count,),
                )
            log.info("%d erasure(s) of the chain applied to this node's blobs", count - start)
        return count - start

    def erase(self, cids: Sequence[str]) -> None:
        """List `cids` as erased (first, so no upload slips in), then delete them."""
        with self._lock, write_transaction(self._db, self.path, "the erased blobs"):
            self._db.executemany(
                "INSERT OR IGNORE INTO erased (cid) VALUES (?)", [(c,) for c in cids]
            )
        store = self.store
        for cid in cids:
            try:
                if isinstance(store, IpfsBlobStore):
                    store.erase(cid)  # unpinned and removed from the IPFS node
                elif isinstance(store, CollectableBlobStore):
                    store.delete(cid)
                else:
                    log.error("this node's blob store cannot delete; erased blob %s stays", cid)
            except (MedchainError, OSError) as exc:
                log.error("could not delete erased blob %s: %r", cid, exc)


class ErasureGuard:
    """A blob store that refuses erased CIDs: `put` of their bytes, `get` (so neither
    a reader nor a peer is served, and a fetch from peers is not started) and `has`."""

    def __init__(self, inner: BlobStore, erased: ErasedBlobs) -> None:
        self.inner = inner
        self.erased = erased
        self.max_blob_bytes: int = getattr(inner, "max_blob_bytes", DEFAULT_MAX_BLOB_BYTES)
        self.root: Path | None = getattr(inner, "root", None)

    def __repr__(self) -> str:
        return f"ErasureGuard({self.inner!r})"

    def put(self, data: bytes) -> str:
        self.erased.refuse([cid_for(data)])
        return self.inner.put(data)

    def put_many(self, blobs: Sequence[bytes]) -> list[str]:
        self.erased.refuse(cid_for(data) for data in blobs)
        return self.inner.put_many(blobs)

    def get(self, cid: str) -> bytes:
        self.erased.refuse([cid])
        return self.inner.get(cid)

    def get_small(self, cid: str, limit: int) -> bytes | None:
        """As `get` for a blob of at most `limit` bytes, when the inner store reads
        such blobs cheaply (its files); None otherwise."""
        small = getattr(self.inner, "get_small", None)
        if small is None:
            return None
        self.erased.refuse([cid])
        found: bytes | None = small(cid, limit)
        return found

    def has(self, cid: str) -> bool:
        return not self.erased.is_erased(cid) and self.inner.has(cid)

    def delete(self, cid: str) -> bool:
        if not isinstance(self.inner, CollectableBlobStore):
            return False
        return self.inner.delete(cid)

    def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if callable(close):
            close()
