"""An in-loop wire between snapshot channels (`SnapshotPeers`), for the unit tests of
the channel, the join and the backfill: no sockets, frames delivered on the next loop
turn as the transport would."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from medchain.node._snapshot_sync import SNAPSHOT_CHANNEL, SnapshotPeers, SnapshotSource


class Wire:
    """Carries frames between the handlers of several keys (the node strips the
    channel byte before its handler), and records the requests each key received."""

    def __init__(self) -> None:
        self.handlers: dict[bytes, Callable[[bytes, bytes], None]] = {}
        self.requests: dict[bytes, list[bytes]] = {}
        self.nodes: dict[bytes, SnapshotPeers] = {}

    def link(self, me: bytes) -> Any:
        wire = self

        class Link:
            def send(self, peer: bytes, frame: bytes) -> bool:
                handler = wire.handlers.get(peer)
                if handler is None:
                    return False
                assert frame[0] == SNAPSHOT_CHANNEL
                if frame[1] == 1:
                    wire.requests.setdefault(peer, []).append(frame)
                asyncio.get_running_loop().call_soon(handler, me, frame[1:])
                return True

            def connected(self) -> tuple[bytes, ...]:
                return tuple(k for k in wire.handlers if k != me)

        return Link()

    def peer(
        self,
        key: bytes,
        source: SnapshotSource | None = None,
        blocks: Callable[[int], bytes | None] | None = None,
        **limits: Any,
    ) -> SnapshotPeers:
        """A channel for `key` on this wire (peers time out after 0.3 s by default)."""
        node = SnapshotPeers(source, blocks, self.link(key), **{"peer_timeout_s": 0.3, **limits})
        self.handlers[key] = node.on_frame
        self.nodes[key] = node
        return node
