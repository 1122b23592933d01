from __future__ import annotations

import asyncio
import logging
import socket
from collections import defaultdict
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from medchain.crypto import AccountKeys
from medchain.p2p import BadCertificate, PeerInfo, Transport, client_context, node_certificate
from tests.waiting import until

NET = "medchain-test"
FAST = {"backoff_initial": 0.02, "backoff_max": 0.2, "handshake_timeout": 2.0}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Node:
    """One test node: keys, certificate, a fixed port and what its transport received."""

    name: str
    keys: AccountKeys = field(default_factory=AccountKeys.generate)
    port: int = field(default_factory=free_port)
    frames: dict[bytes, list[bytes]] = field(default_factory=lambda: defaultdict(list))
    changes: list[tuple[bytes, bool]] = field(default_factory=list)
    transport: Transport | None = None

    @property
    def key(self) -> bytes:
        return self.keys.public_key

    @property
    def cert(self) -> bytes:
        return node_certificate(self.keys, self.name)

    def info(self, dial: bool = True) -> PeerInfo:
        if dial:
            return PeerInfo(self.key, self.cert, "127.0.0.1", self.port, self.name)
        return PeerInfo(self.key, self.cert, name=self.name)

    def on_frame(self, peer: bytes, payload: bytes) -> None:
        self.frames[peer].append(payload)

    def on_peer_change(self, peer: bytes, up: bool) -> None:
        self.changes.append((peer, up))

    async def start(
        self, peers: Sequence[PeerInfo], network: str = NET, **options: Any
    ) -> Transport:
        settings: dict[str, Any] = {**FAST, **options}
        self.transport = Transport(
            self.keys,
            self.cert,
            network,
            "127.0.0.1",
            self.port,
            peers,
            self.on_frame,
            self.on_peer_change,
            **settings,
        )
        await self.transport.start()
        return self.transport

    @property
    def t(self) -> Transport:
        assert self.transport is not None
        return self.transport


def run(main: Callable[[], Coroutine[Any, Any, None]], nodes: Sequence[Node]) -> None:
    """Run one test under a time limit (for a hang, not a speed), closing every
    transport whatever happens."""

    async def bounded() -> None:
        try:
            async with asyncio.timeout(120):
                await main()
        finally:
            for node in nodes:
                if node.transport is not None:
                    await node.transport.close()

    asyncio.run(bounded())


def mesh(nodes: Sequence[Node], me: Node) -> list[PeerInfo]:
    return [n.info() for n in nodes if n is not me]


def test_frames_flow_both_ways_in_order_among_three_nodes() -> None:
    nodes = [Node("a"), Node("b"), Node("c")]
    big = bytes(range(256)) * 4096  # 1 MiB: decrypted straight into its own buffer
    medium = b"m" * 100_000  # over the receive buffer, under the coalescing limit

    async def main() -> None:
        for node in nodes:
            await node.start(mesh(nodes, node))
        await until(lambda: all(len(n.t.connected()) == 2 for n in nodes))
        for node in nodes:
            assert node.t.connected() == tuple(sorted(m.key for m in nodes if m is not node))
            for other in nodes:
                if other is not node:
                    for i in range(1000):
                        assert node.t.send(other.key, b"%s-%d" % (node.name.encode(), i))
                    assert node.t.send(other.key, big)
                    assert node.t.send(other.key, medium)
        pairs = [(n, m) for n in nodes for m in nodes if n is not m]
        await until(lambda: all(len(n.frames[m.key]) == 1002 for n, m in pairs))
        for node in nodes:
            for other in nodes:
                if other is not node:
                    got = node.frames[other.key]
                    assert got[:1000] == [b"%s-%d" % (other.name.encode(), i) for i in range(1000)]
                    assert got[1000] == big
                    assert got[1001] == medium
            assert node.t.stats.frames_in == 2004
            assert node.t.stats.frames_out == 2004
            assert node.t.open_connections == 2
            assert node.t.stats.handshakes_refused == 0

    run(main, nodes)


def test_broadcast_reaches_every_connected_peer() -> None:
    a, b, c = nodes = [Node("a"), Node("b"), Node("c")]

    async def main() -> None:
        await b.start([a.info(dial=False)])
        await c.start([a.info(dial=False)])
        await a.start([b.info(), c.info()])
        await until(lambda: len(a.t.connected()) == 2)
        assert a.t.broadcast(b"block") == 2
        await until(lambda: b.frames[a.key] == [b"block"] and c.frames[a.key] == [b"block"])
        assert b.changes == [(a.key, True)]

    run(main, nodes)


def test_a_key_outside_the_allow_list_is_refused_while_members_keep_talking() -> None:
    a, b, x = nodes = [Node("a"), Node("b"), Node("outsider")]

    async def main() -> None:
        await a.start([b.info(dial=False)])
        await b.start([a.info()])
        await x.start([a.info()])  # x trusts a, but a does not know x
        await until(lambda: a.t.connected() == (b.key,))
        await until(lambda: a.t.stats.handshakes_refused >= 2 and x.t.stats.handshakes_refused >= 2)
        assert x.t.connected() == ()
        assert a.t.send(b.key, b"still here")
        await until(lambda: b.frames[a.key] == [b"still here"])
        assert a.t.connected() == (b.key,)

    run(main, nodes)


def test_a_dial_that_reaches_another_key_is_refused() -> None:
    a, b, c = nodes = [Node("a"), Node("b"), Node("c")]

    async def main() -> None:
        await c.start([a.info(dial=False)])
        wrong = PeerInfo(b.key, b.cert, "127.0.0.1", c.port, "b")  # c listens at b's address
        await a.start([wrong, c.info(dial=False)])
        await until(lambda: a.t.stats.handshakes_refused >= 1)
        assert a.t.connected() == ()

    run(main, nodes)


def test_an_oversized_frame_closes_only_that_connection() -> None:
    a, b, c = nodes = [Node("a"), Node("b"), Node("c")]

    async def main() -> None:
        await a.start([b.info(dial=False), c.info(dial=False)], max_frame_bytes=1024, penalty_s=0.5)
        await b.start([a.info()])
        await c.start([a.info()])
        await until(lambda: len(a.t.connected()) == 2 and b.t.connected() == c.t.connected())
        assert b.t.send(a.key, b"x" * 2048)
        assert c.t.send(a.key, b"fine")
        await until(lambda: a.t.stats.oversized_frames == 1)
        assert a.frames[b.key] == []
        assert (b.key, False) in a.changes
        assert a.t.send(c.key, b"and you?")
        await until(lambda: c.frames[a.key] == [b"and you?"] and a.frames[c.key] == [b"fine"])
        assert (c.key, False) not in a.changes
        assert a.t.send(b.key, b"x" * 1025) is False  # the sender's own limit
        # b is refused for the penalty (its redials fail), then let in again
        assert a.t.stats.penalties == 1 and a.t.penalised_until(b.key) is not None
        await until(lambda: a.t.refused_by_cause()["penalised"] >= 1, what="b's redial refused")
        assert b.key not in a.t.connected()
        await until(lambda: b.key in a.t.connected())

    run(main, nodes)


def test_garbage_and_silent_sockets_are_refused_and_capped() -> None:
    (a,) = nodes = [Node("a")]

    async def main() -> None:
        await a.start([], handshake_timeout=0.3, max_handshakes=2)
        reader, writer = await asyncio.open_connection("127.0.0.1", a.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + bytes(range(256)))
        assert await reader.read() == b""
        writer.close()
        await until(lambda: a.t.stats.handshakes_refused == 1)
        # two silent sockets take the handshake slots; a third is turned away at once
        silent = [await asyncio.open_connection("127.0.0.1", a.port) for _ in range(2)]
        await until(lambda: a.t.open_connections == 2)
        third_reader, third = await asyncio.open_connection("127.0.0.1", a.port)
        assert await third_reader.read() == b""  # turned away as busy: see the causes below
        # ... and the silent ones time out
        for reader, _ in silent:
            assert await reader.read() == b""
        await until(lambda: a.t.open_connections == 0)
        assert a.t.stats.handshakes_refused == 4
        counts = a.t.refused_by_cause()
        assert (counts["tls"], counts["busy"], counts["timeout"]) == (1, 1, 2)
        for _, w in [*silent, (third_reader, third)]:
            w.close()

    run(main, nodes)


FLOODER = "127.0.0.5"
"""Another loopback address (Linux routes all of 127/8): the flood comes from it, the
peer from 127.0.0.1."""


async def hold_idle_connections(port: int, held: list[asyncio.StreamWriter]) -> None:
    """Open silent connections from FLOODER as fast as the loop allows, keeping every
    one the target does not close (those hold its handshake slots)."""
    readers: list[asyncio.StreamReader] = []
    while True:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(FLOODER, 0))
        readers.append(reader)
        held.append(writer)
        for i in reversed(range(len(readers))):
            if readers[i].at_eof():  # refused: make room for the next attempt
                held.pop(i).close()
                readers.pop(i)


def test_one_address_holding_idle_connections_cannot_keep_a_peer_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = nodes = [Node("a"), Node("b")]
    caplog.set_level(logging.INFO, logger="medchain.p2p")

    async def main() -> None:
        # idle handshakes would hold their slots for a minute: only the limits free them
        await a.start(
            [b.info(dial=False)],
            handshake_timeout=60,
            max_handshakes=8,
            max_handshakes_per_address=4,
            refusal_log_interval=3600,
        )
        held: list[asyncio.StreamWriter] = []
        flood = asyncio.create_task(hold_idle_connections(a.port, held))
        try:
            await until(lambda: a.t.refused_by_cause()["address_busy"] >= 50)
            await b.start([a.info()], handshake_timeout=5)
            await until(lambda: a.t.connected() == (b.key,))
            refused = a.t.refused_by_cause()["address_busy"]
            await until(lambda: a.t.refused_by_cause()["address_busy"] > refused)
            assert not flood.done(), "the flood stopped"
        finally:
            flood.cancel()
            for writer in held:
                writer.close()
        assert b.t.connected() == (a.key,)
        counts = a.t.refused_by_cause()
        assert counts["busy"] == counts["timeout"] == 0  # the flood kept its four slots
        assert a.t.stats.handshakes_refused == sum(counts.values())
        assert b.t.send(a.key, b"through") and a.t.send(b.key, b"welcome")
        await until(lambda: a.frames[b.key] == [b"through"] and b.frames[a.key] == [b"welcome"])

    run(main, nodes)
    # every refusal of the flood: the first, then one summary (at close, the interval
    # being an hour) with the count
    flooded = [m for m in caplog.messages if "pending handshakes" in m]
    prefix = f"[{a.key.hex()[:16]}] refused"
    count = a.t.refused_by_cause()["address_busy"]
    assert len(flooded) == 2, flooded
    assert flooded[0] == (
        f"{prefix} a connection from {FLOODER}: too many pending handshakes from one address"
    )
    assert flooded[1].startswith(f"{prefix} {count:,} connections in the last ")
    assert flooded[1].endswith(
        f" s: too many pending handshakes from one address ({FLOODER}: {count:,})"
    )


def test_a_different_network_id_is_refused() -> None:
    a, b = nodes = [Node("a"), Node("b")]

    async def main() -> None:
        await a.start([b.info(dial=False)])
        await b.start([a.info()], network="another-network")
        await until(lambda: a.t.stats.handshakes_refused >= 1 and b.t.stats.handshakes_refused >= 1)
        assert a.t.connected() == () and b.t.connected() == ()

    run(main, nodes)


def test_a_silent_peer_is_dropped_and_a_quiet_one_kept_alive() -> None:
    a, b, s = nodes = [Node("a"), Node("b"), Node("silent")]

    async def main() -> None:
        opts: dict[str, Any] = {"keepalive_interval": 0.1, "idle_timeout": 0.5}
        await a.start([b.info(dial=False), s.info(dial=False)], **opts)
        await b.start([a.info()], **opts)
        await until(lambda: a.t.connected() == (b.key,))  # b's link is older than s's
        # a hand-made peer: TLS with its own key, a correct hello, then nothing at all
        ctx = client_context(s.keys, s.cert, [a.cert])
        _, writer = await asyncio.open_connection("127.0.0.1", a.port, ssl=ctx)
        hello = b"medchain-p2p/1\x00" + s.key + NET.encode()
        writer.write(len(hello).to_bytes(4, "big") + hello)
        if s.key < a.key:  # the smaller key decides which connection is kept
            accept = b"medchain-p2p/1 accept"
            writer.write(len(accept).to_bytes(4, "big") + accept)
        await until(lambda: s.key in a.t.connected())
        # s is dropped; b, quiet for longer, stays: keepalives flow though nobody sends
        # (one pass of the idle check would have closed both)
        await until(lambda: s.key not in a.t.connected())
        assert a.t.stats.idle_timeouts == 1
        writer.close()
        assert a.t.connected() == (b.key,)
        assert b.t.stats.idle_timeouts == 0 and a.frames[b.key] == []

    run(main, nodes)


def test_a_full_queue_refuses_and_counts_without_blocking() -> None:
    a, b = nodes = [Node("a"), Node("b")]

    async def main() -> None:
        await a.start([b.info(dial=False)], max_frame_bytes=64 * 1024, max_queue_bytes=1 << 20)
        await b.start([a.info()])
        await until(lambda: a.t.connected() == (b.key,))
        frame = b"q" * 64 * 1024
        # nothing drains until this coroutine yields: 16 frames fill the queue exactly
        results = [a.t.send(b.key, frame) for _ in range(20)]
        assert results == [True] * 16 + [False] * 4
        assert a.t.stats.queue_drops == 4
        assert a.t.broadcast(frame) == 0
        assert a.t.stats.queue_drops == 5
        await until(lambda: len(b.frames[a.key]) == 16)
        assert a.t.send(b.key, frame)  # drained: room again
        assert a.t.send(b"\x00" * 32, frame) is False
        assert a.t.stats.not_connected == 1

    run(main, nodes)


def test_a_dropped_peer_is_redialled_when_it_restarts_on_the_same_port() -> None:
    a, b = nodes = [Node("a"), Node("b")]

    async def main() -> None:
        await a.start([b.info()])
        await b.start([a.info(dial=False)])
        await until(lambda: a.t.connected() == (b.key,))
        await b.t.close()
        await until(lambda: a.t.connected() == ())
        await until(lambda: a.t.stats.dial_failures >= 1, what="a dialling into a closed port")
        b.frames.clear()
        await b.start([a.info(dial=False)])
        await until(lambda: a.t.connected() == (b.key,))
        assert a.t.stats.reconnects == 1
        assert a.changes == [(b.key, True), (b.key, False), (b.key, True)]
        assert a.t.send(b.key, b"welcome back")
        await until(lambda: b.frames[a.key] == [b"welcome back"])

    run(main, nodes)


def test_a_simultaneous_dial_leaves_one_connection_dialled_by_the_smaller_key() -> None:
    a, b = nodes = sorted([Node("a"), Node("b")], key=lambda n: n.key)

    async def main() -> None:
        await asyncio.gather(a.start([b.info()]), b.start([a.info()]))
        await until(lambda: a.t.connected() == (b.key,) and b.t.connected() == (a.key,))
        await until(lambda: a.t.open_connections == 1 and b.t.open_connections == 1)
        # settled: the duplicate is closed, nothing else is dialled
        await until(lambda: a.t.stats.duplicates_closed + b.t.stats.duplicates_closed >= 1)
        assert a.t.open_connections == 1 and b.t.open_connections == 1
        assert [link.outbound for link in a.t.links()] == [True]
        assert [link.outbound for link in b.t.links()] == [False]
        assert a.t.stats.duplicates_closed + b.t.stats.duplicates_closed >= 1
        assert a.t.send(b.key, b"one") and b.t.send(a.key, b"two")
        await until(lambda: b.frames[a.key] == [b"one"] and a.frames[b.key] == [b"two"])

    run(main, nodes)


def test_an_on_frame_error_is_logged_and_the_connection_lives_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = nodes = [Node("a"), Node("b")]

    def fragile(peer: bytes, payload: bytes) -> None:
        if payload == b"boom":
            raise RuntimeError("handler bug")
        a.frames[peer].append(payload)

    async def main() -> None:
        await b.start([a.info(dial=False)])
        a.on_frame = fragile  # type: ignore[method-assign]
        await a.start([b.info()])
        await until(lambda: b.t.connected() == (a.key,))
        for payload in (b"1", b"boom", b"2"):
            b.t.send(a.key, payload)
        await until(lambda: a.frames[b.key] == [b"1", b"2"])
        assert a.t.stats.callback_errors == 1
        assert a.t.connected() == (b.key,)

    run(main, nodes)
    assert "handler bug" in caplog.text


def test_configuration_is_checked() -> None:
    a, b = Node("a"), Node("b")
    with pytest.raises(BadCertificate):
        Transport(a.keys, a.cert, NET, "127.0.0.1", 0, [PeerInfo(b.key, a.cert)], a.on_frame)
    with pytest.raises(BadCertificate):
        Transport(a.keys, b.cert, NET, "127.0.0.1", 0, [], a.on_frame)
    with pytest.raises(ValueError):
        Transport(a.keys, a.cert, "", "127.0.0.1", 0, [], a.on_frame)
    with pytest.raises(ValueError):
        Transport(a.keys, a.cert, NET, "127.0.0.1", 0, [], a.on_frame, max_queue_bytes=10)
    with pytest.raises(RuntimeError):
        _ = Transport(a.keys, a.cert, NET, "127.0.0.1", 0, [], a.on_frame).listen_port


def test_port_zero_picks_a_port_and_close_is_idempotent() -> None:
    a = Node("a", port=0)

    async def main() -> None:
        t = await a.start([])
        port = t.listen_port
        assert port > 0
        await t.close()
        await t.close()
        with pytest.raises(OSError):
            await asyncio.open_connection("127.0.0.1", port)

    run(main, [a])
