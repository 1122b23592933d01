"""Snapshots across the network: a node serves its snapshots and blocks to peers over
P2P channel 4, and a joining node fetches them, checking every answer.

Peers are not trusted with content: a joining node checks the certified block against
the validator set, the manifest against that block's state root and each chunk against
the manifest. A peer whose answer fails its check is refused for the rest of that
fetch (for a snapshot: every chunk of it) and what it sent is fetched from another
peer; refusals are counted in /metrics. Answers are bounded (a chunk by its size in
the manifest, the rest by `max_answer_bytes`) and each request by `peer_timeout_s`.
A node serves only what it holds, reads files in a worker thread, and answers at most
a few requests of one peer at a time.

Frames after the channel byte (ids are the asker's, big-endian):

    request  0x01 | id (4 bytes) | what (1 byte) | height (8 bytes) | index (4 bytes)
    answer   0x02 | id (4 bytes) | status (1 byte) | the bytes, when status is FOUND

`what` is OFFERS (the heights of the snapshots the peer holds, RLP list of ints),
MANIFEST, CHUNK (number `index` of the snapshot at `height`) or BLOCK (the stored block
at `height`, with its certificate).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol, TypeVar

from medchain.node._metrics import NodeMetrics
from medchain.node._peer_requests import ID_BYTES, PeerLink, PendingRequests, ServingCount
from medchain.store import MAX_HEIGHT
from medchain.types import DecodeError, MedchainError, decode, encode

log = logging.getLogger("medchain.node.snapshots")

T = TypeVar("T")

SNAPSHOT_CHANNEL = 4
_REQUEST = 1
_ANSWER = 2
_REQUEST_BYTES = 1 + ID_BYTES + 1 + 8 + 4  # kind, id, what, height, index
_ANSWER_HEADER = 2 + ID_BYTES + 1  # channel, kind, id, status
MAX_OFFERS = 64
"""Heights a peer may list; a node keeps only its last few snapshots."""


class Ask(IntEnum):
    """What a request asks for."""

    OFFERS = 1
    MANIFEST = 2
    CHUNK = 3
    BLOCK = 4


class SnapshotStatus(IntEnum):
    """How a peer answered a request."""

    FOUND = 0
    MISSING = 1
    BUSY = 2
    TOO_LARGE = 3
    BAD_REQUEST = 4


_STATUSES = frozenset(SnapshotStatus)
_WHY = {
    SnapshotStatus.MISSING: "does not have it",
    SnapshotStatus.BUSY: "was busy",
    SnapshotStatus.TOO_LARGE: "holds it, but it does not fit in one frame",
    SnapshotStatus.BAD_REQUEST: "did not understand the request",
}
_Answer = tuple[SnapshotStatus, bytes] | str
"""A peer's answer (status, bytes), or why there is none."""


class SnapshotSyncFailed(MedchainError):
    """No peer provided what a joining node needs (each one's answer is in the message)."""

    code = "snapshot_sync_failed"


class SnapshotSource(Protocol):
    """The snapshots this node serves (`SnapshotFiles`); a read raises a
    MedchainError for what it does not hold. Called from worker threads."""

    def heights(self) -> list[int]: ...

    def manifest_bytes(self, height: int) -> bytes: ...

    def chunk_bytes(self, height: int, index: int) -> bytes: ...


@dataclass
class SnapshotStats:
    """What the channel did since start, by kind (plain ints, read when /metrics is
    scraped: see `export_snapshot_metrics`). A joining node hands the counts of its
    join to the node it then runs, so that node's /metrics show what was refused."""

    served: Counter[str] = field(default_factory=Counter)
    """Answers sent to peers, by what they asked for."""
    declined: Counter[str] = field(default_factory=Counter)
    """Requests answered without the bytes, by reason."""
    fetched: Counter[str] = field(default_factory=Counter)
    """Answers fetched from peers that passed their check, by what."""
    bytes_fetched: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    """Answers refused, by what and reason (`chunk_check_failed`, `frame_unexpected`)."""


class SnapshotPeers:
    """Channel 4: serves this node's snapshots and blocks, and fetches them from peers.

    `on_frame` is called by the node for every channel-4 frame. `offers()` asks every
    connected peer which snapshots it holds; `fetch` asks peers in turn for one thing
    and returns the first answer that passes `check`; `fetch_chunks` fetches a
    snapshot's chunks from its peers, `fanout` at a time. A node asks one peer at most
    `max_serving_per_peer` things at a time, as many as it serves one peer. `source`
    (None: serves no snapshots) is read in worker threads; `block_bytes(height)`
    (None: serves no blocks) on the loop.
    """

    def __init__(
        self,
        source: SnapshotSource | None,
        block_bytes: Callable[[int], bytes | None] | None,
        link: PeerLink,
        *,
        stats: SnapshotStats | None = None,
        max_answer_bytes: int = 32 * 2**20,
        peer_timeout_s: float = 10.0,
        fanout: int = 4,
        max_serving: int = 4,
        max_serving_per_peer: int = 2,
        names: Mapping[bytes, str] | None = None,
    ) -> None:
        if fanout < 1 or max_serving < 1 or max_serving_per_peer < 1:
            raise ValueError("fanout and the max_* limits must be at least 1")
        self._source = source
        self._block_bytes = block_bytes
        self._link = link
        self.stats = SnapshotStats() if stats is None else stats
        self.max_answer_bytes = max_answer_bytes
        self.peer_timeout_s = peer_timeout_s
        self.fanout = fanout
        self.max_serving_per_peer = max_serving_per_peer
        self._names = dict(names or {})
        self._pending: PendingRequests[tuple[SnapshotStatus, bytes]] = PendingRequests()
        self._serve_slots = asyncio.Semaphore(max_serving)
        self._serving = ServingCount(max_serving_per_peer)
        self._asking: dict[bytes, asyncio.Semaphore] = {}
        """Per peer: requests in flight, kept within what a peer serves at once."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def close(self) -> None:
        """Stop serving and fetching: fetches in progress end with CancelledError."""
        self._closed = True
        for task in self._tasks:
            task.cancel()
        self._pending.cancel()

    def peer_gone(self, peer: bytes) -> None:
        """`peer` disconnected: its unanswered requests end now, so a fetch moves on
        to another peer (or a joining node to genesis) without waiting them out."""
        self._pending.peer_gone(peer)

    # -- frames from peers ------------------------------------------------------------

    def on_frame(self, peer: bytes, payload: bytes) -> None:
        """A channel-4 frame from `peer` (the channel byte already stripped)."""
        if len(payload) < 1 + ID_BYTES or payload[0] not in (_REQUEST, _ANSWER):
            self.stats.refused["frame_malformed"] += 1
            return
        request_id = int.from_bytes(payload[1 : 1 + ID_BYTES], "big")
        if payload[0] == _ANSWER:
            self._on_answer(peer, request_id, payload[1 + ID_BYTES :])
        elif len(payload) != _REQUEST_BYTES or payload[1 + ID_BYTES] not in set(Ask):
            self._decline(peer, request_id, SnapshotStatus.BAD_REQUEST, "malformed")
        elif self._serving.full(peer):
            self._decline(peer, request_id, SnapshotStatus.BUSY, "busy")
        elif not self._closed:
            what = Ask(payload[1 + ID_BYTES])
            height = int.from_bytes(payload[2 + ID_BYTES : 10 + ID_BYTES], "big")
            index = int.from_bytes(payload[10 + ID_BYTES :], "big")
            self._serving.start(peer)
            task = asyncio.get_running_loop().create_task(
                self._serve(peer, request_id, what, height, index)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _serve(
        self, peer: bytes, request_id: int, what: Ask, height: int, index: int
    ) -> None:
        with self._serving.served(peer):
            async with self._serve_slots:
                data = await self._read(what, height, index)
            if data is None:
                self._decline(peer, request_id, SnapshotStatus.MISSING, "missing")
            elif _ANSWER_HEADER + len(data) > self.max_answer_bytes:
                self._decline(peer, request_id, SnapshotStatus.TOO_LARGE, "too_large")
            elif self._link.send(peer, _answer(request_id, SnapshotStatus.FOUND) + data):
                self.stats.served[what.name.lower()] += 1
            else:
                self.stats.declined["send_failed"] += 1

    async def _read(self, what: Ask, height: int, index: int) -> bytes | None:
        """What to answer, or None when this node does not hold it."""
        if what is Ask.BLOCK:
            return None if self._block_bytes is None else self._block_bytes(height)
        source = self._source
        if source is None:
            return None
        try:
            if what is Ask.OFFERS:
                heights = await asyncio.to_thread(source.heights)
                return encode(tuple(heights[-MAX_OFFERS:]), tuple[int, ...])
            if what is Ask.MANIFEST:
                return await asyncio.to_thread(source.manifest_bytes, height)
            return await asyncio.to_thread(source.chunk_bytes, height, index)
        except MedchainError:
            return None

    def _decline(self, peer: bytes, request_id: int, status: SnapshotStatus, reason: str) -> None:
        self.stats.declined[reason] += 1
        self._link.send(peer, _answer(request_id, status))

    def _on_answer(self, peer: bytes, request_id: int, body: bytes) -> None:
        future = self._pending.waiting(peer, request_id)
        if future is None:
            self.stats.refused["frame_unexpected"] += 1  # unasked, or too late
            return
        if not body or body[0] not in _STATUSES:
            self.stats.refused["frame_malformed"] += 1
            future.set_result("sent a malformed answer (refused)")
            return
        future.set_result((SnapshotStatus(body[0]), body[1:]))

    # -- fetching ---------------------------------------------------------------------

    async def offers(self) -> dict[bytes, tuple[int, ...]]:
        """Per connected peer that answered, the heights of the snapshots it offers
        (none, for a peer that holds none yet)."""
        peers = list(self._link.connected())
        answers = await asyncio.gather(*(self._ask(p, Ask.OFFERS, 0, 0) for p in peers))
        found: dict[bytes, tuple[int, ...]] = {}
        for peer, answer in zip(peers, answers, strict=True):
            if isinstance(answer, str) or answer[0] is not SnapshotStatus.FOUND:
                continue
            try:
                heights = decode(tuple[int, ...], answer[1])
            except DecodeError:
                self.stats.refused["offers_malformed"] += 1
                continue
            if len(heights) > MAX_OFFERS:
                self.stats.refused["offers_too_large"] += 1
                continue
            if not all(0 <= h <= MAX_HEIGHT for h in heights):
                self.stats.refused["offers_malformed"] += 1
                continue
            found[peer] = heights
        return found

    async def fetch(
        self,
        what: Ask,
        height: int,
        index: int,
        peers: Sequence[bytes],
        check: Callable[[bytes], T],
        *,
        refused: set[bytes] | None = None,
        max_bytes: int | None = None,
    ) -> T:
        """`check(data)` of the first answer from `peers` (asked in turn) that passes
        it: `check` runs in a worker thread and raises a MedchainError or DecodeError
        to refuse. A peer refused here is added to `refused` and not asked again by
        fetches that share the set. SnapshotSyncFailed when no peer provided it."""
        refused = set() if refused is None else refused
        limit = self.max_answer_bytes if max_bytes is None else max_bytes
        label = what.name.lower()
        why: dict[bytes, str] = {}
        for peer in peers:
            if peer in refused:
                why[peer] = "was refused earlier in this fetch"
                continue
            answer = await self._ask(peer, what, height, index)
            if isinstance(answer, str):
                why[peer] = answer
                continue
            status, data = answer
            if status is not SnapshotStatus.FOUND:
                why[peer] = _WHY[status]
                continue
            if len(data) > limit:
                why[peer] = self._refuse(
                    peer,
                    refused,
                    label,
                    "too_large",
                    f"sent {len(data):,} bytes, more than {limit:,}",
                )
                continue
            try:
                checked = await asyncio.to_thread(check, data)
            except (MedchainError, DecodeError) as exc:
                reason = exc.message if isinstance(exc, MedchainError) else str(exc)
                why[peer] = self._refuse(peer, refused, label, "check_failed", reason)
                continue
            self.stats.fetched[label] += 1
            self.stats.bytes_fetched += len(data)
            return checked
        answers = "; ".join(f"{self._name(p)} {why[p]}" for p in peers) or "no peer to ask"
        raise SnapshotSyncFailed(
            f"no peer provided the {label} at height {height}"
            + (f" (chunk {index})" if what is Ask.CHUNK else "")
            + f": {answers}; check the peers in config.json, or start from genesis with "
            "snapshot_sync = false"
        )

    async def fetch_chunks(
        self,
        height: int,
        sizes: Sequence[int],
        peers: Sequence[bytes],
        add: Callable[[int, bytes], None],
        *,
        refused: set[bytes] | None = None,
    ) -> None:
        """Fetch chunks 0 .. len(sizes)-1 of the snapshot at `height` from `peers`,
        `fanout` at a time, each one starting with another peer; `add(index, data)`
        checks and keeps a chunk (in a worker thread) or raises to refuse it, and
        then its peer is refused for every remaining chunk of this snapshot."""
        refused = set() if refused is None else refused
        todo = iter(range(len(sizes)))

        async def worker() -> None:
            for index in todo:
                start = index % len(peers)
                turn = [*peers[start:], *peers[:start]]
                await self.fetch(
                    Ask.CHUNK,
                    height,
                    index,
                    turn,
                    functools.partial(add, index),
                    refused=refused,
                    max_bytes=sizes[index],
                )

        if not sizes:
            return
        if not peers:
            raise SnapshotSyncFailed(f"no peer offers the snapshot at height {height}")
        workers = [asyncio.ensure_future(worker()) for _ in range(min(self.fanout, len(sizes)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()

    def _refuse(
        self, peer: bytes, refused: set[bytes], label: str, reason: str, detail: str
    ) -> str:
        refused.add(peer)
        self.stats.refused[f"{label}_{reason}"] += 1
        log.warning("refused the %s %s sent: %s", label, self._name(peer), detail)
        return f"sent a {label} that was refused ({detail})"

    async def _ask(self, peer: bytes, what: Ask, height: int, index: int) -> _Answer:
        """The peer's answer, or why there is none."""
        slots = self._asking.setdefault(peer, asyncio.Semaphore(self.max_serving_per_peer))
        body = height.to_bytes(8, "big") + index.to_bytes(4, "big")

        def frame(request_id: int) -> bytes:
            prefix = [SNAPSHOT_CHANNEL, _REQUEST, *request_id.to_bytes(ID_BYTES, "big"), what]
            return bytes(prefix) + body

        async with slots:
            return await self._pending.ask(self._link, peer, frame, self.peer_timeout_s)

    def _name(self, peer: bytes) -> str:
        return self._names.get(peer) or peer.hex()[:16]


def export_snapshot_metrics(metrics: NodeMetrics, stats: Callable[[], SnapshotStats]) -> None:
    """Serve the channel's counts at /metrics as `medchain_snapshot_*_total`."""
    for name, what, label in _EXPORTED:
        metrics.export_counts(
            f"medchain_snapshot_{name}", what, label, functools.partial(_counts, stats, name)
        )
    metrics.export_stats("medchain_snapshot", "Snapshot channel", stats, ["bytes_fetched"])


_EXPORTED = (
    ("served", "Snapshot-channel answers sent to peers, by what they asked for", "what"),
    ("declined", "Snapshot-channel requests answered without the bytes, by reason", "reason"),
    ("fetched", "Snapshot-channel answers from peers that passed their check", "what"),
    ("refused", "Snapshot-channel answers from peers refused, by what and why", "cause"),
)


def _counts(stats: Callable[[], SnapshotStats], name: str) -> Mapping[str, int]:
    counts: Counter[str] = getattr(stats(), name)
    return counts


def _answer(request_id: int, status: SnapshotStatus) -> bytes:
    return bytes([SNAPSHOT_CHANNEL, _ANSWER, *request_id.to_bytes(ID_BYTES, "big"), status])
