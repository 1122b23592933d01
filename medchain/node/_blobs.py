"""Record bodies across the network: a node that misses a blob asks its peers over P2P
channel 3 and keeps what it gets once the bytes match the CID.

An upload lands on one node, but a reader may ask any node, so bodies follow readers
on demand instead of being pushed everywhere. Peers are not trusted with content: an
answer is checked against the CID that was asked for, and a mismatch is refused and
counted, never stored or served. A node serves only from its own store (it never
forwards a request), reads in a worker thread, and answers at most a few requests of
one peer at a time, so a peer cannot make it do unbounded work.

Frames after the channel byte (ids are the asker's, big-endian):

    request  0x01 | id (4 bytes) | CID (ASCII)
    answer   0x02 | id (4 bytes) | status (1 byte) | the blob, when status is FOUND
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from enum import IntEnum
from pathlib import Path

from medchain.app import RecordErased
from medchain.node._config import ConfigError, NodeConfig
from medchain.node._localchain import BLOBS_DIR
from medchain.node._metrics import NodeMetrics
from medchain.node._peer_requests import ID_BYTES, PeerLink, PendingRequests, ServingCount
from medchain.offchain import (
    DEFAULT_MAX_BLOB_BYTES,
    IPFS_INDEX_FILE,
    BlobCorrupted,
    BlobNotFound,
    BlobStore,
    InvalidCid,
    IpfsBlobStore,
    LocalBlobStore,
    cid_from_digest,
    parse_cid,
)
from medchain.store import DiskFull, disk_full, is_disk_full
from medchain.types import MedchainError

log = logging.getLogger("medchain.node.blobs")

BLOB_CHANNEL = 3
_REQUEST = 1
_ANSWER = 2
_ANSWER_HEADER = 2 + ID_BYTES + 1  # channel, kind, id, status


class BlobStatus(IntEnum):
    """How a peer answered a request."""

    FOUND = 0
    MISSING = 1
    DAMAGED = 2
    BUSY = 3
    TOO_LARGE = 4
    BAD_REQUEST = 5


_STATUSES = frozenset(BlobStatus)
_Answer = tuple[BlobStatus, bytes] | str
"""A peer's answer (status, blob), or why there is none."""
_WHY = {
    BlobStatus.MISSING: "does not have it",
    BlobStatus.DAMAGED: "holds a copy that does not match the CID (not served)",
    BlobStatus.BUSY: "was busy",
    BlobStatus.TOO_LARGE: "holds it, but it does not fit in one frame",
    BlobStatus.BAD_REQUEST: "did not understand the request",
}


BlobLink = PeerLink
"""What PeerBlobs needs of the P2P transport."""


class PeerBlobs:
    """Channel 3: serves this node's blobs to peers and fetches missing ones from them.

    `on_frame` is called by the node for every channel-3 frame; `fetch` asks the
    connected peers in random order, `fanout` at a time, each for at most
    `peer_timeout_s` and all of them for at most `timeout_s`. Fetches of one CID share
    one search; at most `max_fetches` searches run at once. Blobs are at most
    `max_blob_bytes` (the store's limit by default). Everything but the store I/O (in
    worker threads) runs on the node's loop.
    """

    def __init__(
        self,
        store: BlobStore,
        link: BlobLink,
        metrics: NodeMetrics,
        *,
        max_blob_bytes: int | None = None,
        max_frame_bytes: int = 32 * 2**20,
        peer_timeout_s: float = 5.0,
        timeout_s: float = 15.0,
        fanout: int = 2,
        max_fetches: int = 8,
        max_serving: int = 4,
        max_serving_per_peer: int = 2,
        names: Mapping[bytes, str] | None = None,
        on_kept: Callable[[str, int], None] | None = None,
    ) -> None:
        """`on_kept(cid, size)` is told of each blob fetched and stored here (from a
        worker thread): the node tracks it, so a body nobody names can be collected."""
        if fanout < 1 or max_fetches < 1 or max_serving < 1 or max_serving_per_peer < 1:
            raise ValueError("fanout and the max_* limits must be at least 1")
        self.store = store
        self._link = link
        self._metrics = metrics
        self.max_blob_bytes: int = (
            getattr(store, "max_blob_bytes", DEFAULT_MAX_BLOB_BYTES)
            if max_blob_bytes is None
            else max_blob_bytes
        )
        self.max_frame_bytes = max_frame_bytes
        self.peer_timeout_s = peer_timeout_s
        self.timeout_s = timeout_s
        self.fanout = fanout
        self.max_serving_per_peer = max_serving_per_peer
        self._names = dict(names or {})
        self.on_kept = on_kept
        self.on_disk_full: Callable[[DiskFull], None] | None = None
        """Told (from a worker thread) when a fetched blob found the disk full."""
        self._pending: PendingRequests[tuple[BlobStatus, bytes]] = PendingRequests()
        self._searches: dict[str, asyncio.Task[bytes]] = {}
        self._search_slots = asyncio.Semaphore(max_fetches)
        self._serve_slots = asyncio.Semaphore(max_serving)
        self._serving = ServingCount(max_serving_per_peer)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def close(self) -> None:
        """Stop serving and fetching: searches in progress end with CancelledError."""
        self._closed = True
        for task in [*self._tasks, *self._searches.values()]:
            task.cancel()
        self._pending.cancel()

    # -- frames from peers ------------------------------------------------------------

    def on_frame(self, peer: bytes, payload: bytes) -> None:
        """A channel-3 frame from `peer` (the channel byte already stripped)."""
        if len(payload) < 1 + ID_BYTES or payload[0] not in (_REQUEST, _ANSWER):
            self._metrics.blobs_refused.labels("malformed").inc()
            return
        request_id = int.from_bytes(payload[1 : 1 + ID_BYTES], "big")
        if payload[0] == _REQUEST:
            self._on_request(peer, request_id, payload[1 + ID_BYTES :])
        else:
            self._on_answer(peer, request_id, payload[1 + ID_BYTES :])

    def _on_request(self, peer: bytes, request_id: int, body: bytes) -> None:
        if self._closed:
            return
        try:
            cid = body.decode("ascii")
            parse_cid(cid)
        except (UnicodeDecodeError, InvalidCid):
            self._decline(peer, request_id, BlobStatus.BAD_REQUEST, "malformed")
            return
        if self._serving.full(peer):
            self._decline(peer, request_id, BlobStatus.BUSY, "busy")
            return
        self._serving.start(peer)
        task = asyncio.get_running_loop().create_task(self._serve(peer, request_id, cid))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, peer: bytes, request_id: int, cid: str) -> None:
        with self._serving.served(peer):
            async with self._serve_slots:
                status, frame = await asyncio.to_thread(self._answer_frame, request_id, cid)
            if status is not BlobStatus.FOUND:
                self._decline(peer, request_id, status, status.name.lower())
            elif not self._link.send(peer, frame):
                self._metrics.blob_requests_declined.labels("send_failed").inc()
            else:
                self._metrics.blobs_served.inc()
                self._metrics.blob_bytes_served.inc(len(frame) - _ANSWER_HEADER)

    def _answer_frame(self, request_id: int, cid: str) -> tuple[BlobStatus, bytes]:
        """In a worker thread: read (and so verify) the blob, build the answer frame."""
        try:
            data = self.store.get(cid)
        except (BlobNotFound, RecordErased):  # an erased record's: never served again
            return BlobStatus.MISSING, b""
        except BlobCorrupted as exc:
            log.warning("not serving a damaged blob to a peer: %s", exc.message)
            return BlobStatus.DAMAGED, b""
        except MedchainError as exc:  # the store itself failed (IPFS down, ...)
            log.warning("cannot serve blob %s to a peer: %s", cid, exc.message)
            return BlobStatus.MISSING, b""
        if _ANSWER_HEADER + len(data) > self.max_frame_bytes:
            return BlobStatus.TOO_LARGE, b""
        return BlobStatus.FOUND, _answer(request_id, BlobStatus.FOUND) + data

    def _decline(self, peer: bytes, request_id: int, status: BlobStatus, reason: str) -> None:
        self._metrics.blob_requests_declined.labels(reason).inc()
        self._link.send(peer, _answer(request_id, status))

    def _on_answer(self, peer: bytes, request_id: int, body: bytes) -> None:
        future = self._pending.waiting(peer, request_id)
        if future is None:
            self._metrics.blobs_refused.labels("unexpected").inc()  # unasked, or too late
            return
        if not body or body[0] not in _STATUSES:
            self._metrics.blobs_refused.labels("malformed").inc()
            future.set_result("sent a malformed answer (refused)")
            return
        future.set_result((BlobStatus(body[0]), body[1:]))

    # -- fetching ---------------------------------------------------------------------

    async def fetch(self, cid: str) -> bytes:
        """The blob named by `cid` from a peer, checked against the CID and stored here.
        BlobNotFound (saying what each peer answered) when no peer could provide it."""
        digest = parse_cid(cid)
        search = self._searches.get(cid)
        if search is None:
            if self._closed:
                raise BlobNotFound(f"blob {cid}: the node is shutting down")
            search = asyncio.get_running_loop().create_task(self._search(cid, digest))
            self._searches[cid] = search
            search.add_done_callback(lambda done: self._search_done(cid, done))
        return await asyncio.shield(search)  # a caller that gives up leaves it to others

    def _search_done(self, cid: str, search: asyncio.Task[bytes]) -> None:
        if self._searches.get(cid) is search:
            del self._searches[cid]
        if not search.cancelled():
            search.exception()  # retrieved, even if every caller gave up

    async def _search(self, cid: str, digest: bytes) -> bytes:
        async with self._search_slots:
            peers = list(self._link.connected())
            random.shuffle(peers)
            why: dict[bytes, str] = {}
            found: bytes | None = None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeout_s):
                    found = await self._ask_in_turn(peers, cid, digest, why)
        if found is not None:
            return found
        self._metrics.blob_fetch_failures.inc()
        if not peers:
            raise BlobNotFound(
                f"blob {cid} is not on this node, and no peer is connected to ask for it; "
                "try again once the node has peers, or ask the node it was uploaded to"
            )
        answers = "; ".join(
            f"{self._name(p)} {why.get(p, f'gave no answer within {self.timeout_s:g} s')}"
            for p in peers
        )
        raise BlobNotFound(
            f"blob {cid} is not on this node and no peer provided it ({answers}); "
            "check the CID in the record, or upload the body again"
        )

    async def _ask_in_turn(
        self, peers: Sequence[bytes], cid: str, digest: bytes, why: dict[bytes, str]
    ) -> bytes | None:
        """Ask `fanout` peers at a time; the first verified blob wins."""
        waiting = iter(peers)
        running: dict[asyncio.Task[bytes | str], bytes] = {}
        loop = asyncio.get_running_loop()
        try:
            while True:
                for peer in waiting:
                    running[loop.create_task(self._try(peer, cid, digest))] = peer
                    if len(running) >= self.fanout:
                        break
                if not running:
                    return None
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    peer = running.pop(task)
                    outcome = task.result()
                    if isinstance(outcome, bytes):
                        return outcome
                    why[peer] = outcome
        finally:
            for task in running:
                task.cancel()
            if running:  # let them withdraw their requests before returning
                await asyncio.wait(running)

    async def _try(self, peer: bytes, cid: str, digest: bytes) -> bytes | str:
        """The verified blob from `peer`, or why not."""
        answer = await self._ask(peer, cid)
        if isinstance(answer, str):
            return answer
        status, data = answer
        if status is not BlobStatus.FOUND:
            return _WHY[status]
        if len(data) > self.max_blob_bytes:
            self._metrics.blobs_refused.labels("too_large").inc()
            return f"sent {len(data):,} bytes, more than a blob may hold (refused)"
        if not await asyncio.to_thread(self._keep, digest, data):
            self._metrics.blobs_refused.labels("cid_mismatch").inc()
            log.warning("%s sent bytes that do not match %s: refused", self._name(peer), cid)
            return "sent bytes that do not match the CID (refused)"
        self._metrics.blobs_fetched.inc()
        self._metrics.blob_bytes_fetched.inc(len(data))
        return data

    async def _ask(self, peer: bytes, cid: str) -> _Answer:
        """The peer's answer, or why there is none."""

        def frame(request_id: int) -> bytes:
            prefix = bytes([BLOB_CHANNEL, _REQUEST]) + request_id.to_bytes(ID_BYTES, "big")
            return prefix + cid.encode("ascii")

        return await self._pending.ask(self._link, peer, frame, self.peer_timeout_s)

    def _keep(self, digest: bytes, data: bytes) -> bool:
        """In a worker thread: whether `data` matches; if so, store it (a failing store
        is logged, the verified bytes are still returned)."""
        if hashlib.sha256(data).digest() != digest:
            return False
        try:
            self.store.put(data)
        except MedchainError as exc:
            log.warning("could not keep a blob fetched from a peer: %s", exc.message)
            return True
        except OSError as exc:
            if not is_disk_full(exc) or self.on_disk_full is None:
                raise
            root = getattr(self.store, "root", None)
            self.on_disk_full(disk_full(Path(root or "blobs"), "a body fetched from a peer"))
            return True  # the reader still gets the verified bytes
        if self.on_kept is not None:
            try:
                self.on_kept(cid_from_digest(digest), len(data))
            except (MedchainError, sqlite3.Error) as exc:  # the reader still gets the bytes
                log.warning("could not track a blob fetched from a peer: %r", exc)
        return True

    def _name(self, peer: bytes) -> str:
        return self._names.get(peer) or peer.hex()[:16]


def _answer(request_id: int, status: BlobStatus) -> bytes:
    return bytes([BLOB_CHANNEL, _ANSWER]) + request_id.to_bytes(ID_BYTES, "big") + bytes([status])


INLINE_READ_BYTES = 64 * 1024
"""Local blobs up to this size are read on the event loop (most records' ciphertexts)."""


class NetworkBlobStore:
    """The node's blob store: its own store for put/get/has, and `fetch`, which falls
    back to the peers when the local store misses a blob (or holds a damaged copy)."""

    def __init__(self, local: BlobStore, peers: PeerBlobs) -> None:
        self.local = local
        self.peers = peers

    def __repr__(self) -> str:
        return f"NetworkBlobStore({self.local!r})"

    def put(self, data: bytes) -> str:
        return self.local.put(data)

    def put_many(self, blobs: Sequence[bytes]) -> list[str]:
        return self.local.put_many(blobs)

    def get(self, cid: str) -> bytes:
        return self.local.get(cid)

    def has(self, cid: str) -> bool:
        return self.local.has(cid)

    async def fetch(self, cid: str) -> bytes:
        """The blob named by `cid`: from the local store, else from a peer (verified,
        then kept here). A local file of at most `INLINE_READ_BYTES` is read on the
        event loop (a page-cache read costs less than the hop to a worker thread and
        back, which under load also waits for the interpreter); a larger one, or one
        from another backend, in a worker thread."""
        small = getattr(self.local, "get_small", None)
        try:
            found = None if small is None else small(cid, INLINE_READ_BYTES)
            if found is not None:
                return bytes(found)
            return await asyncio.to_thread(self.local.get, cid)
        except BlobNotFound:
            return await self.peers.fetch(cid)
        except BlobCorrupted as damaged:
            log.warning("%s; fetching a good copy from the peers", damaged.message)
            try:
                return await self.peers.fetch(cid)
            except BlobNotFound as missing:
                raise BlobCorrupted(f"{damaged.message} ({missing.message})") from None

    def close(self) -> None:
        self.peers.close()
        close = getattr(self.local, "close", None)
        if callable(close):
            close()


def open_blob_store(home: Path, config: NodeConfig) -> BlobStore:
    """The node's own store: an IPFS node when config.json says
    `"offchain": {"ipfs_api": "http://127.0.0.1:5001"}`, else files under HOME/blobs."""
    section = config.extra.get("offchain", {})
    if not isinstance(section, dict):
        raise ConfigError(f"offchain must be an object in config.json, found {section!r}")
    url = section.get("ipfs_api")
    if url is None:
        return LocalBlobStore(home / BLOBS_DIR)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(
            f"offchain.ipfs_api must be the http(s) URL of an IPFS RPC API "
            f"(like http://127.0.0.1:5001), found {url!r}"
        )
    return IpfsBlobStore(url, home / IPFS_INDEX_FILE)
