"""Snapshots from peers (P2P channel 4), unit-level: SnapshotPeers instances joined by
an in-loop wire, with peers that lie, stay silent or send too much."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from medchain.node._metrics import NodeMetrics
from medchain.node._snapshot_sync import (
    SNAPSHOT_CHANNEL,
    Ask,
    SnapshotPeers,
    SnapshotStats,
    SnapshotStatus,
    SnapshotSyncFailed,
    export_snapshot_metrics,
)
from medchain.types import MedchainError, SnapshotInvalid
from tests.node.snapshotwire import Wire
from tests.waiting import until

ASKER, HONEST, LIAR, SILENT, GREEDY = (bytes([n]) * 32 for n in range(1, 6))
HEIGHT = 40
CHUNKS = [b"chunk-%d " % i * (50 + i) for i in range(6)]
MANIFEST = b"manifest of height 40"
BLOCK = b"certified block 40"


class Files:
    """A snapshot source holding one snapshot; `tamper` changes a chunk it serves."""

    def __init__(self, tamper: Callable[[bytes], bytes] = lambda data: data) -> None:
        self.tamper = tamper

    def heights(self) -> list[int]:
        return [HEIGHT - 20, HEIGHT]

    def manifest_bytes(self, height: int) -> bytes:
        if height != HEIGHT:
            raise MedchainError(f"no snapshot at {height}")
        return MANIFEST

    def chunk_bytes(self, height: int, index: int) -> bytes:
        if height != HEIGHT or index >= len(CHUNKS):
            raise MedchainError(f"no chunk {index} at {height}")
        return self.tamper(CHUNKS[index])


def peer(wire: Wire, key: bytes, source: Files | None = None, **limits: Any) -> SnapshotPeers:
    return wire.peer(key, source, lambda height: BLOCK if height == HEIGHT else None, **limits)


def check_chunk(index: int, data: bytes) -> None:
    """Stands in for the manifest's check of a chunk: its SHA-256."""
    if hashlib.sha256(data).digest() != hashlib.sha256(CHUNKS[index]).digest():
        raise SnapshotInvalid(f"chunk {index} does not match the manifest")


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


async def fetch_all(asker: SnapshotPeers, peers: list[bytes]) -> dict[int, bytes]:
    kept: dict[int, bytes] = {}

    def add(index: int, data: bytes) -> None:
        check_chunk(index, data)
        kept[index] = data

    await asker.fetch_chunks(HEIGHT, [len(c) for c in CHUNKS], peers, add)
    return kept


def test_offers_list_the_heights_each_peer_holds() -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER)
        peer(wire, HONEST, Files())
        peer(wire, SILENT)  # serves no snapshots: answers MISSING
        assert await asker.offers() == {HONEST: (HEIGHT - 20, HEIGHT)}

    run(scenario())


def test_the_manifest_and_the_block_come_from_a_peer_that_holds_them() -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER)
        peer(wire, HONEST, Files())
        assert await asker.fetch(Ask.MANIFEST, HEIGHT, 0, [HONEST], bytes) == MANIFEST
        assert await asker.fetch(Ask.BLOCK, HEIGHT, 0, [HONEST], bytes) == BLOCK
        assert wire.nodes[HONEST].stats.served["block"] == 1
        with pytest.raises(SnapshotSyncFailed, match="does not have it"):
            await asker.fetch(Ask.BLOCK, HEIGHT + 1, 0, [HONEST], bytes)

    run(scenario())


def test_a_lying_chunk_is_refused_and_fetched_from_an_honest_peer() -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER, fanout=2)
        peer(wire, LIAR, Files(tamper=lambda data: data[:-1] + b"!"))
        peer(wire, HONEST, Files())
        assert await fetch_all(asker, [LIAR, HONEST]) == dict(enumerate(CHUNKS))
        refused = asker.stats.refused["chunk_check_failed"]
        assert 1 <= refused <= 2  # the two first fetches may both start with the liar
        assert len(wire.requests[LIAR]) == refused  # never asked again once refused
        assert asker.stats.fetched["chunk"] == len(CHUNKS)

    run(scenario())


def test_a_peer_that_never_answers_times_out_and_another_is_asked() -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER, fanout=1)
        wire.handlers[SILENT] = lambda sender, payload: None
        peer(wire, HONEST, Files())
        assert await fetch_all(asker, [SILENT, HONEST]) == dict(enumerate(CHUNKS))
        with pytest.raises(SnapshotSyncFailed, match=r"gave no answer within 0\.3 s"):
            await asker.fetch(Ask.MANIFEST, HEIGHT, 0, [SILENT], bytes)

    run(scenario())


def test_a_peer_that_disconnects_is_given_up_at_once_not_at_the_timeout() -> None:
    """Its requests end when the transport says it went: with an hour's timeout, the
    fetch still moves on (a joining node's peers restart as their nodes open)."""

    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER, fanout=1, peer_timeout_s=3_600)
        wire.handlers[SILENT] = lambda sender, payload: None
        asked = asyncio.ensure_future(asker.fetch(Ask.MANIFEST, HEIGHT, 0, [SILENT], bytes))
        while not wire.requests.get(SILENT):
            await asyncio.sleep(0)
        asker.peer_gone(SILENT)
        with pytest.raises(SnapshotSyncFailed, match="disconnected before it answered"):
            await asyncio.wait_for(asked, 60)

    run(scenario())


def test_an_oversized_answer_is_refused() -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER, fanout=1, max_answer_bytes=len(MANIFEST) + 100)
        peer(wire, GREEDY, Files(tamper=lambda data: data + b"x" * 10))
        peer(wire, HONEST, Files())
        assert await fetch_all(asker, [GREEDY, HONEST]) == dict(enumerate(CHUNKS))
        assert asker.stats.refused["chunk_too_large"] == 1
        big = peer(wire, GREEDY, Files())
        big._block_bytes = lambda height: b"b" * 1_000
        with pytest.raises(SnapshotSyncFailed, match="sent 1,000 bytes, more than"):
            await asker.fetch(Ask.BLOCK, HEIGHT, 0, [GREEDY], bytes)

    run(scenario())


def test_when_every_peer_lies_the_fetch_fails_saying_why() -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER)
        peer(wire, LIAR, Files(tamper=lambda data: b"forged"))

        def refuse(data: bytes) -> bytes:
            raise SnapshotInvalid("the manifest does not reach the state root")

        with pytest.raises(SnapshotSyncFailed, match="does not reach the state root"):
            await asker.fetch(Ask.MANIFEST, HEIGHT, 0, [LIAR], refuse)
        with pytest.raises(SnapshotSyncFailed, match="chunk 0 does not match"):
            await fetch_all(asker, [LIAR])

    run(scenario())


def test_malformed_requests_and_unasked_answers_are_counted() -> None:
    async def scenario() -> None:
        wire = Wire()
        peer(wire, HONEST, Files())
        answers: list[bytes] = []
        wire.handlers[ASKER] = lambda sender, payload: answers.append(payload)
        link = wire.link(ASKER)
        link.send(HONEST, bytes([SNAPSHOT_CHANNEL, 1, 0, 0, 0, 7, 99]))  # no such request
        link.send(HONEST, bytes([SNAPSHOT_CHANNEL, 2, 0, 0, 0, 9, 0]) + b"unasked")
        link.send(HONEST, bytes([SNAPSHOT_CHANNEL, 9]))
        await until(lambda: answers, what="the answer to the malformed request")
        assert answers == [bytes([2, 0, 0, 0, 7, SnapshotStatus.BAD_REQUEST])]
        assert wire.nodes[HONEST].stats.declined["malformed"] == 1
        assert wire.nodes[HONEST].stats.refused["frame_unexpected"] == 1
        assert wire.nodes[HONEST].stats.refused["frame_malformed"] == 1

    run(scenario())


def test_a_peer_asking_too_much_at_once_is_told_busy() -> None:
    async def scenario() -> None:
        wire = Wire()
        peer(wire, HONEST, Files(), max_serving_per_peer=1)
        answers: list[bytes] = []
        wire.handlers[ASKER] = lambda sender, payload: answers.append(payload)
        link = wire.link(ASKER)
        for request_id in (1, 2):
            request = bytes([SNAPSHOT_CHANNEL, 1, 0, 0, 0, request_id, Ask.CHUNK])
            link.send(HONEST, request + HEIGHT.to_bytes(8, "big") + (0).to_bytes(4, "big"))
        await until(lambda: len(answers) == 2, what="both answers")
        by_id = {a[4]: a[5:] for a in answers}
        assert by_id == {
            1: bytes([SnapshotStatus.FOUND]) + CHUNKS[0],
            2: bytes([SnapshotStatus.BUSY]),
        }

    run(scenario())


def test_the_counts_are_served_at_metrics() -> None:
    stats = SnapshotStats()
    stats.refused["chunk_check_failed"] += 2
    stats.fetched["chunk"] += 5
    stats.bytes_fetched += 300
    metrics = NodeMetrics()
    export_snapshot_metrics(metrics, lambda: stats)
    sample = metrics.registry.get_sample_value
    assert sample("medchain_snapshot_refused_total", {"cause": "chunk_check_failed"}) == 2
    assert sample("medchain_snapshot_fetched_total", {"what": "chunk"}) == 5
    assert sample("medchain_snapshot_bytes_fetched_total") == 300
    stats.refused["chunk_check_failed"] += 1  # read when scraped
    assert sample("medchain_snapshot_refused_total", {"cause": "chunk_check_failed"}) == 3


class Boasting(Files):
    """Offers a height no chain can reach (it would not even fit in a request)."""

    def heights(self) -> list[int]:
        return [HEIGHT, 2**64]


def test_offers_of_impossible_heights_are_refused() -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = peer(wire, ASKER)
        peer(wire, HONEST, Files())
        peer(wire, LIAR, Boasting())
        assert await asker.offers() == {HONEST: (HEIGHT - 20, HEIGHT)}
        assert asker.stats.refused["offers_malformed"] == 1

    run(scenario())
