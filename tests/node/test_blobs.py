"""Record bodies from peers (P2P channel 3), unit-level: PeerBlobs instances joined by
a fake transport in one loop, plus peers that lie, stay silent or flood."""

from __future__ import annotations

import asyncio
import errno
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from medchain.node import ConfigError, NodeConfig
from medchain.node._blobs import (
    BLOB_CHANNEL,
    INLINE_READ_BYTES,
    BlobStatus,
    NetworkBlobStore,
    PeerBlobs,
    open_blob_store,
)
from medchain.node._metrics import NodeMetrics
from medchain.offchain import (
    BlobCorrupted,
    BlobNotFound,
    InvalidCid,
    IpfsBlobStore,
    LocalBlobStore,
    MemoryBlobStore,
    cid_for,
)
from medchain.store import DiskFull
from tests.waiting import until

A, B, C, D = (bytes([n]) * 32 for n in b"ABCD")
NAMES = {A: "node-a", B: "node-b", C: "node-c", D: "node-d"}
BODY = b"sealed FHIR bundle" * 100
CID = cid_for(BODY)

Handler = Callable[[bytes, bytes], None]


class FakeNet:
    """Delivers frames between handlers on the next loop turn, like the transport
    (the channel byte is stripped, as Node._on_frame does)."""

    def __init__(self) -> None:
        self.handlers: dict[bytes, Handler] = {}
        self.frames: list[tuple[bytes, bytes, bytes]] = []

    def send_from(self, me: bytes, peer: bytes, frame: bytes) -> bool:
        handler = self.handlers.get(peer)
        if handler is None:
            return False
        assert frame[0] == BLOB_CHANNEL
        self.frames.append((me, peer, frame))
        asyncio.get_running_loop().call_soon(handler, me, frame[1:])
        return True

    def requests_to(self, peer: bytes) -> int:
        return sum(1 for _, to, frame in self.frames if to == peer and frame[1] == 1)


class FakeLink:
    def __init__(self, net: FakeNet, me: bytes) -> None:
        self.net, self.me = net, me

    def send(self, peer: bytes, frame: bytes) -> bool:
        return self.net.send_from(self.me, peer, frame)

    def connected(self) -> tuple[bytes, ...]:
        return tuple(sorted(k for k in self.net.handlers if k != self.me))


def _node(net: FakeNet, key: bytes, store: Any = None, **limits: Any) -> PeerBlobs:
    limits = {"peer_timeout_s": 0.3, "timeout_s": 2.0, **limits}
    blobs = PeerBlobs(
        store if store is not None else MemoryBlobStore(),
        FakeLink(net, key),
        NodeMetrics(),
        names=NAMES,
        **limits,
    )
    net.handlers[key] = blobs.on_frame
    return blobs


def _answering(net: FakeNet, key: bytes, status: int, data: bytes = b"") -> None:
    """A peer that answers every request with `status` and `data` (a liar, for FOUND)."""

    def handler(peer: bytes, payload: bytes) -> None:
        if payload[0] == 1:
            answer = bytes([BLOB_CHANNEL, 2]) + payload[1:5] + bytes([status]) + data
            net.send_from(key, peer, answer)

    net.handlers[key] = handler


def _silent(net: FakeNet, key: bytes) -> None:
    net.handlers[key] = lambda peer, payload: None


def _count(blobs: PeerBlobs, name: str, **labels: str) -> float:
    value = blobs._metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


# -- fetching ---------------------------------------------------------------------------


def test_a_missing_blob_comes_from_the_peer_that_has_it_and_is_kept() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A)
        _node(net, B)
        holder = _node(net, C)
        holder.store.put(BODY)
        assert await asker.fetch(CID) == BODY
        assert asker.store.has(CID) and asker.store.get(CID) == BODY
        assert _count(asker, "medchain_blobs_fetched_total") == 1
        assert _count(asker, "medchain_blob_bytes_fetched_total") == len(BODY)
        assert _count(holder, "medchain_blobs_served_total") == 1

    run(scenario())


def test_a_blob_kept_from_a_peer_is_reported_for_tracking() -> None:
    """The node's body ledger hears of every blob fetched and kept (so one nobody
    names can be collected), and of nothing refused."""

    async def scenario() -> None:
        net = FakeNet()
        kept: list[tuple[str, int]] = []
        asker = _node(net, A, on_kept=lambda cid, size: kept.append((cid, size)))
        _node(net, B).store.put(BODY)
        assert await asker.fetch(CID) == BODY
        assert kept == [(CID, len(BODY))]
        liar = FakeNet()
        refusing = _node(liar, A, on_kept=lambda cid, size: kept.append((cid, size)))
        _answering(liar, B, BlobStatus.FOUND, b"tampered bytes")
        with pytest.raises(BlobNotFound):
            await refusing.fetch(CID)
        assert kept == [(CID, len(BODY))]

    run(scenario())


class FullDisk(LocalBlobStore):
    def put(self, data: bytes) -> str:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_no_room_for_a_fetched_blob_is_told_and_the_reader_still_gets_it(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        net = FakeNet()
        told: list[DiskFull] = []
        asker = _node(net, A, FullDisk(tmp_path / "blobs"))
        asker.on_disk_full = told.append
        _node(net, B).store.put(BODY)
        assert await asker.fetch(CID) == BODY
        assert not asker.store.has(CID)
        (full,) = told
        assert full.path == tmp_path / "blobs"
        assert "a body fetched from a peer was not written" in full.message

    run(scenario())


def test_a_peer_sending_wrong_bytes_is_refused_and_nothing_is_stored() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A)
        _answering(net, B, BlobStatus.FOUND, b"tampered bytes")
        with pytest.raises(BlobNotFound, match=r"node-b sent bytes that do not match the CID"):
            await asker.fetch(CID)
        assert not asker.store.has(CID)
        assert _count(asker, "medchain_blobs_refused_total", reason="cid_mismatch") == 1
        assert _count(asker, "medchain_blob_fetch_failures_total") == 1

    run(scenario())


def test_an_honest_peer_wins_over_a_lying_one() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A, fanout=1)  # one after another, in random order
        _answering(net, B, BlobStatus.FOUND, b"tampered bytes")
        _node(net, C).store.put(BODY)
        for _ in range(5):
            asker.store = MemoryBlobStore()
            assert await asker.fetch(CID) == BODY

    run(scenario())


def test_not_found_anywhere_says_what_each_peer_answered() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A)
        _node(net, B)
        damaged = MemoryBlobStore()
        damaged.put(BODY)
        damaged._blobs[CID] = b"flipped bits"
        holder = _node(net, C, damaged)
        _silent(net, D)
        started = time.monotonic()
        with pytest.raises(BlobNotFound) as caught:
            await asker.fetch(CID)
        message = caught.value.message
        assert CID in message and "node-b does not have it" in message
        assert "node-c holds a copy that does not match the CID (not served)" in message
        assert "node-d gave no answer within 0.3 s" in message
        assert time.monotonic() - started < 1.5  # the silent peer cost one peer timeout
        assert _count(holder, "medchain_blob_requests_declined_total", reason="damaged") == 1
        assert _count(holder, "medchain_blobs_served_total") == 0
        assert not asker.store.has(CID)

    run(scenario())


def test_with_no_peer_connected_the_error_says_so() -> None:
    async def scenario() -> None:
        asker = _node(FakeNet(), A)
        with pytest.raises(BlobNotFound, match="no peer is connected"):
            await asker.fetch(CID)
        with pytest.raises(InvalidCid):
            await asker.fetch("QmNotOurs")

    run(scenario())


def test_silent_peers_cost_at_most_the_overall_timeout() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A, peer_timeout_s=5.0, timeout_s=0.3)
        _silent(net, B)
        _silent(net, C)
        started = time.monotonic()
        with pytest.raises(BlobNotFound, match=r"gave no answer within 0\.3 s"):
            await asker.fetch(CID)
        assert time.monotonic() - started < 5.0  # not one silent peer's 5 s, let alone two
        assert len(asker._pending) == 0  # nothing left waiting

    run(scenario())


def test_concurrent_fetches_of_one_blob_share_one_search() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A)
        _node(net, B).store.put(BODY)
        results = await asyncio.gather(*(asker.fetch(CID) for _ in range(10)))
        assert results == [BODY] * 10
        assert net.requests_to(B) == 1

    run(scenario())


def test_a_caller_giving_up_does_not_cancel_the_search_for_others() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A)
        _node(net, B).store.put(BODY)
        impatient = asyncio.ensure_future(asker.fetch(CID))
        patient = asyncio.ensure_future(asker.fetch(CID))
        await asyncio.sleep(0)  # one loop turn: both have asked, no answer is delivered yet
        impatient.cancel()
        assert await patient == BODY

    run(scenario())


# -- answering --------------------------------------------------------------------------


def test_one_peer_cannot_make_a_node_serve_without_bounds() -> None:
    async def scenario() -> None:
        net = FakeNet()
        holder = _node(net, B, max_serving_per_peer=2)
        holder.store.put(BODY)
        answers: list[int] = []

        def flooder(peer: bytes, payload: bytes) -> None:
            answers.append(payload[5])

        net.handlers[A] = flooder
        for request_id in range(10):
            request = bytes([BLOB_CHANNEL, 1]) + request_id.to_bytes(4, "big") + CID.encode()
            net.send_from(A, B, request)
        await until(lambda: len(answers) >= 10, what="ten answers")
        assert answers.count(BlobStatus.FOUND) == 2
        assert answers.count(BlobStatus.BUSY) == 8
        assert _count(holder, "medchain_blob_requests_declined_total", reason="busy") == 8
        assert len(holder._serving) == 0

    run(scenario())


def test_a_blob_over_the_frame_limit_is_not_sent() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A)
        _node(net, B, max_frame_bytes=len(BODY)).store.put(BODY)
        with pytest.raises(BlobNotFound, match="does not fit in one frame"):
            await asker.fetch(CID)

    run(scenario())


def test_an_answer_over_the_blob_limit_is_refused() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A, max_blob_bytes=1024)
        _answering(net, B, BlobStatus.FOUND, b"x" * 1025)
        with pytest.raises(BlobNotFound, match="more than a blob may hold"):
            await asker.fetch(CID)
        assert _count(asker, "medchain_blobs_refused_total", reason="too_large") == 1

    run(scenario())


def test_malformed_and_unasked_frames_are_counted_and_dropped() -> None:
    async def scenario() -> None:
        net = FakeNet()
        node = _node(net, A)
        answers: list[bytes] = []
        net.handlers[B] = lambda peer, payload: answers.append(payload)
        node.on_frame(B, b"")
        node.on_frame(B, b"\x09\x00\x00\x00\x01")
        node.on_frame(B, bytes([2, 0, 0, 0, 7, BlobStatus.FOUND]) + BODY)  # never asked
        node.on_frame(B, bytes([1, 0, 0, 0, 8]) + b"not a cid")
        await until(lambda: answers, what="the answer to the bad request")
        assert _count(node, "medchain_blobs_refused_total", reason="malformed") == 2
        assert _count(node, "medchain_blobs_refused_total", reason="unexpected") == 1
        assert answers == [bytes([2, 0, 0, 0, 8, BlobStatus.BAD_REQUEST])]
        assert not node.store.has(CID)

    run(scenario())


def test_a_malformed_answer_is_refused() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A)
        _answering(net, B, 99)
        with pytest.raises(BlobNotFound, match="node-b sent a malformed answer"):
            await asker.fetch(CID)

    run(scenario())


def test_close_ends_searches_in_progress() -> None:
    async def scenario() -> None:
        net = FakeNet()
        asker = _node(net, A, peer_timeout_s=5.0, timeout_s=5.0)
        _silent(net, B)
        search = asyncio.ensure_future(asker.fetch(CID))
        await until(lambda: net.requests_to(B) >= 1, what="the search to ask node-b")
        asker.close()
        with pytest.raises(asyncio.CancelledError):
            await search
        with pytest.raises(BlobNotFound, match="shutting down"):
            await asker.fetch(CID)

    run(scenario())


# -- the node's store -------------------------------------------------------------------


def test_the_node_store_reads_locally_first_then_asks_peers(tmp_path: Path) -> None:
    async def scenario() -> None:
        net = FakeNet()
        local = LocalBlobStore(tmp_path / "blobs")
        store = NetworkBlobStore(local, _node(net, A, local))
        _node(net, B).store.put(BODY)
        mine = store.put(b"uploaded here")
        assert await store.fetch(mine) == b"uploaded here" and net.frames == []
        assert not store.has(CID)
        assert await store.fetch(CID) == BODY and store.has(CID) and store.get(CID) == BODY
        store.close()

    run(scenario())


def test_the_node_store_reads_small_and_large_local_blobs(tmp_path: Path) -> None:
    """Small local blobs are read on the loop, larger ones in a worker thread: both
    come back whole, and neither asks a peer."""

    async def scenario() -> None:
        net = FakeNet()
        local = LocalBlobStore(tmp_path / "blobs")
        store = NetworkBlobStore(local, _node(net, A, local))
        large = b"x" * (INLINE_READ_BYTES + 1)
        small_cid, large_cid = store.put(b"small"), store.put(large)
        assert await store.fetch(small_cid) == b"small"
        assert await store.fetch(large_cid) == large and net.frames == []
        store.close()

    run(scenario())


def test_the_node_store_puts_batches_into_its_own_store(tmp_path: Path) -> None:
    async def scenario() -> None:
        net = FakeNet()
        local = LocalBlobStore(tmp_path / "blobs")
        store = NetworkBlobStore(local, _node(net, A, local))
        cids = store.put_many([b"one", BODY])
        assert cids == [cid_for(b"one"), CID] and local.get(CID) == BODY
        assert net.frames == []
        store.close()

    run(scenario())


def test_a_damaged_local_copy_is_repaired_from_a_peer(tmp_path: Path) -> None:
    async def scenario() -> None:
        net = FakeNet()
        local = LocalBlobStore(tmp_path / "blobs")
        store = NetworkBlobStore(local, _node(net, A, local))
        local.put(BODY)
        local.path_for(CID).write_bytes(b"flipped bits")
        with pytest.raises(BlobCorrupted, match="no peer is connected"):
            await store.fetch(CID)
        _node(net, B).store.put(BODY)
        assert await store.fetch(CID) == BODY
        assert local.get(CID) == BODY  # rewritten with the verified bytes

    run(scenario())


def test_open_blob_store_reads_the_offchain_section(tmp_path: Path) -> None:
    assert isinstance(open_blob_store(tmp_path, NodeConfig("n")), LocalBlobStore)
    ipfs = NodeConfig("n", extra={"offchain": {"ipfs_api": "http://127.0.0.1:5001"}})
    store = open_blob_store(tmp_path, ipfs)
    assert isinstance(store, IpfsBlobStore) and store.api_url == "http://127.0.0.1:5001"
    assert store.index_path == tmp_path / "ipfs-index.sqlite"
    store.close()
    with pytest.raises(ConfigError, match=r"offchain\.ipfs_api"):
        open_blob_store(tmp_path, NodeConfig("n", extra={"offchain": {"ipfs_api": "5001"}}))
    with pytest.raises(ConfigError, match="offchain must be an object"):
        open_blob_store(tmp_path, NodeConfig("n", extra={"offchain": "ipfs"}))
