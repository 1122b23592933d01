"""Requests to peers and their answers, as every request/answer channel numbers,
awaits and bounds them."""

from __future__ import annotations

import asyncio

import pytest

from medchain.node._peer_requests import ID_BYTES, PendingRequests, ServingCount
from tests.waiting import until

PEER, OTHER = b"\x01" * 32, b"\x02" * 32


class Link:
    def __init__(self, accept: bool = True) -> None:
        self.accept = accept
        self.sent: list[tuple[bytes, bytes]] = []

    def send(self, peer: bytes, frame: bytes) -> bool:
        self.sent.append((peer, frame))
        return self.accept

    def connected(self) -> tuple[bytes, ...]:
        return (PEER, OTHER)


def test_an_answer_is_taken_from_the_peer_asked_once() -> None:
    async def scenario() -> None:
        pending: PendingRequests[bytes] = PendingRequests()
        link = Link()
        asking = asyncio.ensure_future(
            pending.ask(link, PEER, lambda rid: rid.to_bytes(ID_BYTES, "big"), 60)
        )
        await until(lambda: link.sent, what="the request")
        ((peer, frame),) = link.sent
        assert peer == PEER
        request_id = int.from_bytes(frame, "big")
        assert len(pending) == 1
        assert pending.waiting(OTHER, request_id) is None  # not the peer asked
        future = pending.waiting(PEER, request_id)
        assert future is not None
        future.set_result(b"the answer")
        assert await asking == b"the answer"
        assert pending.waiting(PEER, request_id) is None  # answered once
        assert len(pending) == 0

    asyncio.run(scenario())


@pytest.mark.parametrize(
    ("accept", "why"),
    [(False, "could not be asked"), (True, "gave no answer within 0.05 s")],
)
def test_no_answer_says_why(accept: bool, why: str) -> None:
    async def scenario() -> None:
        pending: PendingRequests[bytes] = PendingRequests()
        answer = await pending.ask(Link(accept), PEER, lambda rid: b"x", 0.05)
        assert isinstance(answer, str) and answer.startswith(why)
        assert len(pending) == 0

    asyncio.run(scenario())


def test_serving_counts_each_peer_up_to_its_limit() -> None:
    serving = ServingCount(per_peer=2)
    serving.start(PEER)
    serving.start(PEER)
    assert serving.full(PEER) and not serving.full(OTHER)
    with serving.served(PEER):
        pass
    assert not serving.full(PEER) and len(serving) == 1
    with pytest.raises(RuntimeError), serving.served(PEER):
        raise RuntimeError("serving failed")
    assert len(serving) == 0
