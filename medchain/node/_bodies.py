"""Which record bodies a node keeps, and for whom.

A node stores a body only for a caller that proved who it is: with the signed
transaction naming it, admitted first (POST /v1/records), or in an edge gateway's
bulk upload signed by its registered key (POST /v1/blobs/batch). Each upload is
tracked here under its uploader until a committed transaction names the body:

* an account may hold at most `quota_bytes` of bodies no committed transaction names
  yet; more is refused (OverQuota) until its transactions commit. Anonymous
  submissions, which have no account, share one bucket (`ANONYMOUS`), so whatever
  they add up to stays bounded too;
* a body named by a committed, successful transaction is referenced for ever (the
  `named` set never shrinks), so it is never collected, even if someone later uploads
  the same bytes under a transaction that never commits;
* the collector deletes bodies nobody named `grace_s` after they were last uploaded.
  Bodies fetched from peers because a reader asked for them are tracked the same way
  (`FETCHED`, no quota: the node asked), so bytes nobody names do not pile up.

The ledger learns what blocks name from `note_block`, which `LedgerApp.commit` calls
before the block is stored; the height it got to is written in the same SQLite
transaction, and `catch_up` scans whatever the chain store holds beyond it before the
collector may run (a crash, an older node, a ledger file removed). The collector runs
in a worker thread, one body at a time under the lock `note_block` takes, so no body
is deleted once a block naming it is being committed. Bodies stored before this
ledger existed are not tracked and never deleted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from medchain.app import BODY_METHODS, RecordErased, named_bodies
from medchain.crypto import address_from_public_key, format_address
from medchain.node._erasures import ErasedBlobs
from medchain.node._sqlite_writes import full_disk_raised, write_transaction
from medchain.offchain import BlobStore, CollectableBlobStore, cid_for
from medchain.store import ChainStore, DiskFull
from medchain.types import Block, DecodeError, MedchainError, Receipt, Tx, tx_id

log = logging.getLogger("medchain.node.bodies")

BODIES_FILE = "bodies.sqlite"
ANONYMOUS = "anonymous"
"""The uploader of anonymous submissions (anon.submit has no sender): one shared bucket."""
FETCHED = "peers"
"""The 'uploader' of bodies fetched from peers for a reader (tracked, no quota)."""
DEFAULT_QUOTA_BYTES = 64 * 2**20
DEFAULT_GRACE_S = 3_600
COLLECT_BATCH = 1_000
"""Most bodies one collector run looks at (the next run goes on)."""


class OverQuota(MedchainError):
    """An upload would take its uploader over its quota of bodies not yet named."""

    code = "upload_quota_exceeded"


def uploader_of(tx: Tx) -> str:
    """Whose quota a body uploaded with `tx` counts against: its sender's address, or
    the shared anonymous bucket for a ring-signed transaction (no sender)."""
    return format_address(address_from_public_key(tx.sender)) if tx.sender else ANONYMOUS


class BodyLedger:
    """The SQLite file behind `Bodies`: uploads not yet named, every CID named by a
    committed transaction, and the height scanned. Not locked: `Bodies` serialises it."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        with full_disk_raised(self.path, "the new body ledger"):
            self._create()

    def _create(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # a lost tail is re-scanned on start
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS unnamed (
                cid TEXT NOT NULL, uploader TEXT NOT NULL,
                size INTEGER NOT NULL, stored_ms INTEGER NOT NULL,
                PRIMARY KEY (cid, uploader));
            CREATE INDEX IF NOT EXISTS unnamed_by_uploader ON unnamed (uploader);
            CREATE TABLE IF NOT EXISTS named (cid TEXT PRIMARY KEY) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """
        )

    def close(self) -> None:
        self._db.close()

    @property
    def scanned_height(self) -> int:
        """The last height whose named bodies are recorded; -1 before any."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'height'").fetchone()
        return -1 if row is None else int(row[0])

    def is_named(self, cid: str) -> bool:
        return self._db.execute("SELECT 1 FROM named WHERE cid = ?", (cid,)).fetchone() is not None

    def usage(self, uploader: str) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM unnamed WHERE uploader = ?", (uploader,)
        ).fetchone()
        return int(row[0])

    def totals(self) -> tuple[int, int]:
        """(bodies, bytes) tracked and not named, over every uploader."""
        row = self._db.execute(
            "SELECT COUNT(DISTINCT cid), COALESCE(SUM(size), 0) FROM unnamed"
        ).fetchone()
        return int(row[0]), int(row[1])

    def reserve(
        self, uploader: str, sizes: Mapping[str, int], now_ms: int, quota: int | None
    ) -> list[str]:
        """Track the bodies `sizes` (CID -> bytes) as stored by `uploader` now, skipping
        those already named; returns the CIDs it had not tracked for it before. With a
        `quota`, OverQuota (nothing changed) if they would take it over."""
        wanted = {cid: size for cid, size in sizes.items() if not self.is_named(cid)}
        with self._transaction():
            fresh = [
                cid
                for cid in wanted
                if self._db.execute(
                    "SELECT 1 FROM unnamed WHERE cid = ? AND uploader = ?", (cid, uploader)
                ).fetchone()
                is None
            ]
            if quota is not None and fresh:
                held = self.usage(uploader)
                adding = sum(wanted[cid] for cid in fresh)
                if held + adding > quota:
                    who = "anonymous submissions" if uploader == ANONYMOUS else uploader
                    raise OverQuota(
                        f"{who} hold {held:,} bytes of bodies stored on this node that no "
                        f"committed transaction names yet; {adding:,} more would pass the "
                        f"quota of {quota:,} bytes. Wait for the pending transactions (or a "
                        "gateway's batches) to commit, then send the upload again"
                    )
            self._db.executemany(
                "INSERT INTO unnamed (cid, uploader, size, stored_ms) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (cid, uploader) DO UPDATE SET stored_ms = excluded.stored_ms",
                [(cid, uploader, size, now_ms) for cid, size in wanted.items()],
            )
        return fresh

    def release(self, uploader: str, cids: Iterable[str]) -> None:
        with self._transaction():
            self._db.executemany(
                "DELETE FROM unnamed WHERE cid = ? AND uploader = ?",
                [(cid, uploader) for cid in cids],
            )

    def name(self, height: int, cids: Iterable[str]) -> None:
        """Record that the block at `height` names `cids`, and that it was scanned."""
        rows = [(cid,) for cid in cids]
        with self._transaction():
            self._db.executemany("INSERT OR IGNORE INTO named (cid) VALUES (?)", rows)
            self._db.executemany("DELETE FROM unnamed WHERE cid = ?", rows)
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('height', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (height,),
            )

    def expired(self, cutoff_ms: int, limit: int) -> list[str]:
        """Bodies tracked, not named, and uploaded by nobody since `cutoff_ms`."""
        rows = self._db.execute(
            "SELECT cid FROM unnamed GROUP BY cid HAVING MAX(stored_ms) < ? "
            "ORDER BY MAX(stored_ms) LIMIT ?",
            (cutoff_ms, limit),
        ).fetchall()
        return [str(cid) for (cid,) in rows]

    def still_expired(self, cid: str, cutoff_ms: int) -> bool:
        row = self._db.execute(
            "SELECT MAX(stored_ms) FROM unnamed WHERE cid = ?", (cid,)
        ).fetchone()
        return row[0] is not None and int(row[0]) < cutoff_ms and not self.is_named(cid)

    def forget(self, cid: str) -> int:
        """Stop tracking `cid`; the largest size it was tracked with."""
        row = self._db.execute("SELECT MAX(size) FROM unnamed WHERE cid = ?", (cid,)).fetchone()
        self._db.execute("DELETE FROM unnamed WHERE cid = ?", (cid,))
        return 0 if row[0] is None else int(row[0])

    def _transaction(self) -> contextlib.AbstractContextManager[None]:
        return write_transaction(self._db, self.path, "the body ledger's update")


class BodyMetrics:
    """What operators see in /metrics about uploads and the collector."""

    def __init__(self, registry: CollectorRegistry, totals: Callable[[], tuple[int, int]]) -> None:
        r = registry
        self.stored = Counter(
            "medchain_uploads_stored", "Bodies stored by authenticated uploads", registry=r
        )
        self.stored_bytes = Counter(
            "medchain_upload_bytes_stored", "Bytes of the bodies stored by uploads", registry=r
        )
        self.refused = Counter(
            "medchain_uploads_refused",
            "Body uploads refused (unsigned, bad_signature, expired, not_a_gateway, "
            "over_quota, erased, body_mismatch, tx_refused, malformed)",
            ["reason"],
            registry=r,
        )
        self.collected = Counter(
            "medchain_bodies_collected",
            "Bodies deleted because no committed transaction named them in time",
            registry=r,
        )
        self.collected_bytes = Counter(
            "medchain_body_bytes_collected", "Bytes of the bodies collected", registry=r
        )
        Gauge(
            "medchain_bodies_unnamed",
            "Bodies stored here that no committed transaction names yet",
            registry=r,
        ).set_function(lambda: totals()[0])
        Gauge(
            "medchain_body_bytes_unnamed",
            "Bytes of the bodies stored here that no committed transaction names yet",
            registry=r,
        ).set_function(lambda: totals()[1])


class Bodies:
    """Authenticated uploads into `store`, their quota and their collection.

    Thread-safe: one lock over the ledger. `upload` runs store and ledger I/O in worker
    threads; `note_block` runs on the caller's thread (the node's loop) and is quick."""

    def __init__(
        self,
        store: BlobStore,
        ledger: BodyLedger,
        registry: CollectorRegistry,
        *,
        quota_bytes: int = DEFAULT_QUOTA_BYTES,
        grace_s: int = DEFAULT_GRACE_S,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.quota_bytes = quota_bytes
        self.grace_s = grace_s
        self._clock_ms = clock_ms
        self._lock = threading.Lock()
        self._caught_up = False
        self._closed = False
        self.metrics = BodyMetrics(registry, self._totals)
        self.on_disk_full: Callable[[DiskFull], None] | None = None
        """Told when an upload found the disk full (the node stops on it)."""
        self.erased: ErasedBlobs | None = None
        """Erased records' ciphertexts: an upload naming one is refused first."""

    def close(self) -> None:
        """Close the ledger; a collector run still in its worker thread stops."""
        with self._lock:
            self._closed = True
            self.ledger.close()

    def _totals(self) -> tuple[int, int]:
        with self._lock:
            return (0, 0) if self._closed else self.ledger.totals()

    def usage(self, uploader: str) -> int:
        with self._lock:
            return self.ledger.usage(uploader)

    def is_named(self, cid: str) -> bool:
        with self._lock:
            return self.ledger.is_named(cid)

    # -- uploads ----------------------------------------------------------------------

    def refused(self, reason: str) -> None:
        self.metrics.refused.labels(reason).inc()

    async def upload(
        self,
        uploader: str,
        blobs: Sequence[bytes],
        admit: Callable[[], Awaitable[Any]] | None = None,
    ) -> list[str]:
        """Store `blobs` for `uploader` and return their CIDs: its quota is reserved
        first (OverQuota), then `admit` runs (the transaction naming them; if it raises,
        the reservation is released and nothing is stored), then the bodies are stored.
        Uploading bytes already stored, or already named, is harmless. DiskFull (told
        to `on_disk_full` first) when the disk is full."""
        try:
            return await self._upload(uploader, blobs, admit)
        except DiskFull as exc:
            if self.on_disk_full is not None:
                self.on_disk_full(exc)
            raise

    async def _upload(
        self,
        uploader: str,
        blobs: Sequence[bytes],
        admit: Callable[[], Awaitable[Any]] | None,
    ) -> list[str]:
        try:
            fresh = await asyncio.to_thread(self._reserve_blobs, uploader, blobs)
        except OverQuota:
            self.refused("over_quota")
            raise
        except RecordErased:
            self.refused("erased")
            raise
        if admit is not None:
            try:
                await admit()
            except BaseException:
                await asyncio.to_thread(self._release, uploader, fresh)
                raise
        cids = await asyncio.to_thread(self._put_many, blobs)
        self.metrics.stored.inc(len(blobs))
        self.metrics.stored_bytes.inc(sum(len(blob) for blob in blobs))
        return cids

    def _put_many(self, blobs: Sequence[bytes]) -> list[str]:
        root = getattr(self.store, "root", None)
        with full_disk_raised(Path("blobs") if root is None else Path(root), "the bodies"):
            return self.store.put_many(blobs)

    def _reserve_blobs(self, uploader: str, blobs: Sequence[bytes]) -> list[str]:
        sizes = {cid_for(blob): len(blob) for blob in blobs}
        if self.erased is not None:
            self.erased.refuse(sizes)
        return self._reserve(uploader, sizes)

    def _reserve(self, uploader: str, sizes: Mapping[str, int]) -> list[str]:
        quota = None if uploader == FETCHED else self.quota_bytes
        with self._lock:
            return self.ledger.reserve(uploader, sizes, self._clock_ms(), quota)

    def _release(self, uploader: str, cids: Sequence[str]) -> None:
        if cids:
            with self._lock:
                self.ledger.release(uploader, cids)

    def kept_from_peer(self, cid: str, size: int) -> None:
        """A body fetched from a peer was stored here (from a worker thread): track it
        unless a committed transaction names it."""
        self._reserve(FETCHED, {cid: size})

    # -- what blocks name -------------------------------------------------------------

    def note_block(self, block: Block, receipts: Sequence[Receipt]) -> None:
        """The bodies `block` names (its successful transactions'), recorded before the
        block is stored: `LedgerApp.commit` calls this."""
        named = _named_in(block.txs, [r.ok for r in receipts])
        with self._lock:
            try:
                self.ledger.name(block.header.height, named)
            except sqlite3.Error as exc:  # the chain goes on; collecting waits for a restart
                self._caught_up = False
                log.error(
                    "could not record the bodies block %d names (%r); the collector stops "
                    "until the node restarts and catches up",
                    block.header.height,
                    exc,
                )

    def catch_up(self, chain: ChainStore) -> int:
        """Scan the blocks `chain` holds beyond the ledger's height (one call, before
        the node commits anything); the collector runs only after this. Returns the
        number of blocks scanned."""
        with self._lock:
            start = self.ledger.scanned_height + 1
        scanned = 0
        for block in chain.blocks(max(start, 1)):
            oks = []
            for tx in block.txs:
                receipt = chain.receipt(tx_id(tx)) if tx.method in BODY_METHODS else None
                oks.append(receipt is not None and receipt.ok)
            with self._lock:
                self.ledger.name(block.height, _named_in(block.txs, oks))
            scanned += 1
        if scanned:
            log.info("body ledger caught up: %d block(s) scanned", scanned)
        self._caught_up = True
        return scanned

    # -- the collector ----------------------------------------------------------------

    def collect(self, limit: int = COLLECT_BATCH) -> tuple[int, int]:
        """Delete up to `limit` bodies tracked, not named, and uploaded by nobody for
        `grace_s`; returns (bodies, bytes) deleted. Blocking: run it in a worker thread.
        Each body is re-checked and deleted under the lock `note_block` takes."""
        store = self.store
        if not self._caught_up or not isinstance(store, CollectableBlobStore):
            return 0, 0
        cutoff = self._clock_ms() - self.grace_s * 1000
        with self._lock:
            if self._closed:
                return 0, 0
            candidates = self.ledger.expired(cutoff, limit)
        deleted = freed = 0
        for cid in candidates:
            with self._lock:
                if self._closed:
                    break
                if not self.ledger.still_expired(cid, cutoff):
                    continue  # uploaded again, or named, meanwhile
                try:
                    store.delete(cid)
                except MedchainError as exc:
                    log.warning("could not delete unnamed body %s: %s", cid, exc.message)
                    continue
                size = self.ledger.forget(cid)
            deleted += 1
            freed += size
        if deleted:
            self.metrics.collected.inc(deleted)
            self.metrics.collected_bytes.inc(freed)
            log.info("collected %d unnamed bodies (%d bytes)", deleted, freed)
        return deleted, freed

    async def run_collector(self, interval_s: float) -> None:
        """Collect every `interval_s` until cancelled; a failing run is logged."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                while (await asyncio.to_thread(self.collect))[0] >= COLLECT_BATCH:
                    pass  # a full batch: more may be due
            except (MedchainError, OSError, sqlite3.Error) as exc:
                log.warning("the body collector failed (it runs again): %r", exc)


def _named_in(txs: Sequence[Tx], oks: Sequence[bool]) -> list[str]:
    """The CIDs the successful transactions among `txs` name."""
    cids: list[str] = []
    for tx, ok in zip(txs, oks, strict=True):
        if ok and tx.method in BODY_METHODS:
            try:
                cids.extend(body.cid for body in named_bodies(tx))
            except DecodeError:  # a successful call decoded its arguments: cannot happen
                log.error("committed transaction %s names bodies it cannot decode", tx_id(tx).hex())
    return cids
