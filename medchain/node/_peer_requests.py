"""Request and answer between peers on a P2P channel, the part every such channel
shares (record bodies, snapshots): numbering what this node asks, waiting for the
answer with a timeout, and counting what it serves each peer at once."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, Protocol, TypeVar

A = TypeVar("A")

ID_BYTES = 4
"""Request ids on the wire: the asker's, big-endian."""


class PeerLink(Protocol):
    """What a channel needs of the P2P transport."""

    def send(self, peer: bytes, frame: bytes) -> bool: ...

    def connected(self) -> tuple[bytes, ...]: ...


class PendingRequests(Generic[A]):
    """Requests sent to peers that wait for an answer, by (peer, id): an answer is
    taken only from the peer asked, once, and only while someone waits for it."""

    def __init__(self) -> None:
        self._next_id = random.getrandbits(32)
        self._asked: dict[tuple[bytes, int], asyncio.Future[A | str]] = {}

    async def ask(
        self, link: PeerLink, peer: bytes, frame: Callable[[int], bytes], timeout_s: float
    ) -> A | str:
        """Send `frame(request_id)` to `peer`; its answer, or why there is none."""
        request_id = self._next_id = (self._next_id + 1) % 2**32
        future: asyncio.Future[A | str] = asyncio.get_running_loop().create_future()
        self._asked[(peer, request_id)] = future
        try:
            if not link.send(peer, frame(request_id)):
                return "could not be asked (not connected, or its send queue is full)"
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            return f"gave no answer within {timeout_s:g} s"
        finally:
            self._asked.pop((peer, request_id), None)

    def waiting(self, peer: bytes, request_id: int) -> asyncio.Future[A | str] | None:
        """The future of a request `peer` answers now (forgotten: it is answered once),
        or None for an answer nobody asked for or that came too late."""
        future = self._asked.pop((peer, request_id), None)
        return None if future is None or future.done() else future

    def peer_gone(self, peer: bytes) -> None:
        """`peer` disconnected: what it was asked will never be answered, so say so
        now rather than at each request's timeout."""
        for (asked, _), future in list(self._asked.items()):
            if asked == peer and not future.done():
                future.set_result("disconnected before it answered")

    def cancel(self) -> None:
        for future in self._asked.values():
            future.cancel()

    def __len__(self) -> int:
        """Requests still waiting for their answer."""
        return len(self._asked)


class ServingCount:
    """Requests of each peer being served now: a peer gets at most `per_peer`."""

    def __init__(self, per_peer: int) -> None:
        self.per_peer = per_peer
        self._serving: dict[bytes, int] = {}

    def __len__(self) -> int:
        """Peers with a request being served."""
        return len(self._serving)

    def full(self, peer: bytes) -> bool:
        return self._serving.get(peer, 0) >= self.per_peer

    def start(self, peer: bytes) -> None:
        """Count one more request of `peer` (before its task starts)."""
        self._serving[peer] = self._serving.get(peer, 0) + 1

    @contextmanager
    def served(self, peer: bytes) -> Iterator[None]:
        """Around serving a counted request: uncounted when done."""
        try:
            yield
        finally:
            left = self._serving.get(peer, 1) - 1
            if left:
                self._serving[peer] = left
            else:
                self._serving.pop(peer, None)
