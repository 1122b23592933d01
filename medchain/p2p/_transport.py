"""The node-to-node transport: framed messages over TLS 1.3 between allow-listed nodes.

Each connection is an asyncio protocol rather than a stream pair: the accepting side
runs the TLS handshake itself (`loop.start_tls`), so refused handshakes can be counted,
timed out and capped, and the reader parses frames straight out of the buffer TLS
decrypts into (large frames are decrypted into their own buffer), calling `on_frame`
without a task switch per frame. Writes are coalesced: every frame queued during one
loop turn goes out in as few TLS records as fit, and a queue bounded in bytes plus the
transport's flow control keep a slow peer from costing more than `max_queue_bytes`.

Wire format: each frame is a 4-byte big-endian length and the payload. The first frame
each way is a hello (magic, the sender's key, the network id); empty frames are
keepalives and never reach `on_frame`.

One connection per pair of nodes, and no frame lost to the choice: of the two, the node
with the smaller key (the decider) picks the connection and says so with an accept
frame; neither side sends data on a connection before that, and the decider never swaps
a live connection for another, so data only ever flows on the one both sides keep. When
both dial at once, the decider holds the peer's connection until its own dial ends, so
the one it dialled wins. A connection that died without a word (the peer's host went
down) is found by the keepalives; the decider probes at once when the peer dials again.
If the decider accepts a new connection, it had none, so the other side drops its old
one as dead (frames still queued there move over).
"""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
import struct
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from medchain.crypto import PUBLIC_KEY_SIZE, AccountKeys
from medchain.p2p._refusals import Refusal, RefusalLog, address_group
from medchain.p2p._tls import BadCertificate, certificate_key, client_context, server_context

log = logging.getLogger("medchain.p2p")


class _NodeLog(logging.LoggerAdapter[logging.Logger]):
    """Prefixes every message with this node's short key (several nodes may share a process)."""

    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        return f"[{self.extra['node'] if self.extra else '?'}] {msg}", kwargs


_HEADER = struct.Struct(">I")
_HELLO_MAGIC = b"medchain-p2p/1\x00"
_ACCEPT = b"medchain-p2p/1 accept"
_MAX_HELLO = 1024
_MAX_NETWORK_ID = 256
_SCRATCH = 64 * 1024  # receive buffer; larger frames are decrypted into their own buffer
_COALESCE = 64 * 1024  # frames at least this big are written as they are, not copied


@dataclass(frozen=True)
class PeerInfo:
    """An allowed peer: its key and certificate; `host`/`port` when this node dials it."""

    key: bytes
    cert_pem: bytes
    host: str | None = None
    port: int | None = None
    name: str = ""


@dataclass(frozen=True)
class LinkInfo:
    """One live peer connection, for status pages: who, which side dialled, from where."""

    key: bytes
    outbound: bool
    remote: tuple[str, int] | None


@dataclass
class TransportStats:
    """Counters since start; payload bytes only (headers and TLS not included)."""

    frames_in: int = 0
    frames_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0
    connections: int = 0  # peer links established
    reconnects: int = 0  # ... of which to a peer that had been connected before
    handshakes_refused: int = 0  # every refusal, both directions (by cause: refused_by_cause)
    dial_failures: int = 0  # dials that found nobody listening
    duplicates_closed: int = 0  # connections to an already connected peer, closed
    oversized_frames: int = 0  # frames over max_frame_bytes, received (closes) or sent
    penalties: int = 0  # peers refused for a while after a protocol violation
    queue_drops: int = 0  # frames refused because the peer's send queue was full
    not_connected: int = 0  # frames sent to a peer with no connection
    idle_timeouts: int = 0  # connections closed because the peer went silent
    callback_errors: int = 0  # exceptions raised by on_frame / on_peer_change


def _set(future: asyncio.Future[bool], value: bool) -> None:
    if not future.done():
        future.set_result(value)


_TLS_FAILURES = {
    Refusal.TIMEOUT: "the TLS handshake did not finish in time",
    Refusal.TLS: "TLS handshake failed: {exc!r}",
    Refusal.CLOSED: "the connection closed during the TLS handshake: {exc!r}",
}


def _tls_refusal(exc: BaseException, out_of_time: bool) -> Refusal:
    """The cause of a failed TLS handshake: out of time (asyncio aborts the connection
    then, with a ConnectionAbortedError), refused by TLS, or the socket gone (reset,
    closed) mid-handshake."""
    if out_of_time or isinstance(exc, TimeoutError):
        return Refusal.TIMEOUT
    if isinstance(exc, ssl.SSLError) or not isinstance(exc, OSError):
        return Refusal.TLS
    return Refusal.CLOSED


def _cert_key(der: bytes | None) -> bytes | None:
    if der is None:
        return None
    try:
        key = x509.load_der_x509_certificate(der).public_key()
    except ValueError:
        return None
    if not isinstance(key, Ed25519PublicKey):
        return None
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


class _Connection(asyncio.BufferedProtocol):
    """One TCP connection: TLS handshake, hello, then frames in and out."""

    def __init__(self, owner: Transport, expected: bytes | None) -> None:
        self._owner = owner
        self._loop = owner._loop
        self.expected = expected
        self.outbound = expected is not None
        self.key = b""
        self.decider = False  # whether this node picks the connection kept (smaller key)
        self.authenticated = False  # TLS and hello done
        self.linked = False  # accepted as the peer's connection: data may flow
        self.retired = False  # replaced by a newer connection to the same peer
        self.ready: asyncio.Future[bool] = self._loop.create_future()  # linked?
        self.closed = asyncio.Event()
        self.reason: str | None = None  # why it ended (the first reason given)
        self.cause: Refusal | None = None  # why it was refused, if it was
        self.address = ""  # the remote host, once connected
        self.transport: asyncio.Transport | None = None  # TLS, once the handshake is done
        self._raw: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._done = False
        now = self._loop.time()
        self.started = now
        self.last_rx = now
        self.last_tx = now
        # sending
        self.queue: deque[bytes] = deque()
        self.queued = 0
        self._flush_scheduled = False
        self._write_paused = False
        # receiving: unparsed bytes are scratch[start:end]; a large frame fills body
        self._limit = _MAX_HELLO
        self._scratch = bytearray()
        self._view = memoryview(self._scratch)
        self._start = 0
        self._end = 0
        self._body: bytearray | None = None
        self._body_pos = 0

    # --- lifecycle -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._owner._conns.add(self)
        peer = transport.get_extra_info("peername")
        self.address = str(peer[0]) if peer else "?"
        # TLS, hello, and the decider possibly finishing its own dial first
        self._deadline = self._loop.call_later(2 * self._owner._handshake_timeout, self._expire)
        if self.outbound:  # create_connection hands over the TLS transport
            self._raw = transport
            self._tls_ready(transport)
            return
        self._raw = transport
        transport.pause_reading()  # the ClientHello waits in the kernel for start_tls
        refusal = self._owner._admit(self)
        if refusal is not None:
            self.abort(refusal.description, refusal)
            return
        self._owner._spawn(self._accept_tls(transport))

    async def _accept_tls(self, raw: asyncio.Transport) -> None:
        owner = self._owner
        try:
            tls = await self._loop.start_tls(
                raw,
                self,
                owner._server_ctx,
                server_side=True,
                ssl_handshake_timeout=owner._handshake_timeout,
                ssl_shutdown_timeout=owner._handshake_timeout,
            )
        except asyncio.CancelledError:
            self.abort("transport closed")
            self._finish()
            raise
        except Exception as exc:  # every failure here is a refused handshake
            # connection_lost does not reach this protocol while TLS is mid-handshake
            elapsed = self._loop.time() - self.started
            cause = _tls_refusal(exc, elapsed >= owner._handshake_timeout)
            self.abort(_TLS_FAILURES[cause].format(exc=exc), cause)
            self._finish()
            return
        if tls is None or self._done:
            self.abort("TLS handshake failed", Refusal.TLS)
            self._finish()
            return
        self._tls_ready(tls)

    def _tls_ready(self, tls: asyncio.Transport) -> None:
        self.transport = tls
        ssl_object = tls.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        key = _cert_key(der)
        if key is None or key not in self._owner._peers:
            self.abort("the peer's certificate key is not in the allow-list", Refusal.NOT_ALLOWED)
            return
        if self.expected is not None and key != self.expected:
            self.abort(
                f"dialled {self.expected.hex()[:16]} but reached {key.hex()[:16]}",
                Refusal.WRONG_PEER,
            )
            return
        self.key = key
        hello = self._owner._hello
        tls.write(_HEADER.pack(len(hello)) + hello)
        if self._end > self._start:
            self._parse()

    def _on_hello(self, payload: bytes) -> None:
        magic = len(_HELLO_MAGIC)
        if not payload.startswith(_HELLO_MAGIC) or len(payload) < magic + PUBLIC_KEY_SIZE:
            self.abort("malformed hello", Refusal.BAD_HELLO)
            return
        key = payload[magic : magic + PUBLIC_KEY_SIZE]
        network = payload[magic + PUBLIC_KEY_SIZE :]
        if key != self.key:
            self.abort("the hello names another key than the certificate", Refusal.BAD_HELLO)
            return
        if network != self._owner._network:
            self.abort(
                f"the peer is on network {network.decode('utf-8', 'replace')!r}, "
                f"this node on {self._owner._network.decode()!r}",
                Refusal.WRONG_NETWORK,
            )
            return
        until = self._owner.penalised_until(key)
        if until is not None:
            self.abort(
                f"the peer is refused for {until:.0f} s more after a protocol violation",
                Refusal.PENALISED,
            )
            return
        self.authenticated = True
        self.decider = self._owner._key < key
        if self.decider and self._deadline is not None:
            self._deadline.cancel()  # what remains is our own decision
        self._owner._authenticated(self)

    def accept(self) -> None:
        """The decider keeps this connection: tell the peer, then let data flow."""
        assert self.transport is not None
        self.transport.write(_HEADER.pack(len(_ACCEPT)) + _ACCEPT)
        self.link()

    def link(self) -> None:
        self.linked = True
        self._limit = self._owner._max_frame
        if self._deadline is not None:
            self._deadline.cancel()
        self._owner._link(self)
        _set(self.ready, True)

    def _expire(self) -> None:
        if not self.linked:
            self.abort("the handshake did not finish in time", Refusal.TIMEOUT)

    def abort(self, reason: str, cause: Refusal | None = None) -> None:
        """Drop the connection at once (nothing more is sent); `cause` if this refuses
        the connection during its handshake."""
        if self.reason is None:
            self.reason = reason
            self.cause = cause
        transport = self.transport or self._raw
        if transport is not None:
            transport.abort()
        else:
            self._finish()

    def close(self, reason: str) -> None:
        """Close after what is already written (TLS close_notify included)."""
        if self.reason is None:
            self.reason = reason
        transport = self.transport or self._raw
        if transport is not None:
            transport.close()
        else:
            self._finish()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reason is None:
            self.reason = f"connection lost: {exc!r}" if exc else "closed by the peer"
        self._finish()

    def eof_received(self) -> bool:
        return False

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        if self._deadline is not None:
            self._deadline.cancel()
        _set(self.ready, False)
        self._body = None
        self.queue.clear()
        self.queued = 0
        self._owner._gone(self)
        self.closed.set()

    @property
    def done(self) -> bool:
        return self._done

    # --- sending ---------------------------------------------------------------------

    def enqueue(self, frame: bytes) -> bool:
        size = len(frame)
        if self.queued + size > self._owner._max_queue or self._done:
            return False
        self.queue.append(frame)
        self.queued += size
        self.kick()
        return True

    def kick(self) -> None:
        """Schedule a flush for the end of this loop turn, so frames sent together
        share TLS records."""
        if self.queue and not self._flush_scheduled and not self._write_paused:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        tls = self.transport
        if tls is None or self._done or not self.linked or tls.is_closing():
            return
        queue = self.queue
        batch = bytearray()
        frames = 0
        nbytes = 0
        # pause_writing() may run inside write(): stop as soon as it does
        while queue and not self._write_paused:
            frame = queue.popleft()
            size = len(frame)
            self.queued -= size
            frames += size > 0  # keepalives are not counted
            nbytes += size
            if size >= _COALESCE:
                batch += _HEADER.pack(size)
                tls.write(batch)
                tls.write(frame)
                batch = bytearray()
            else:
                batch += _HEADER.pack(size)
                batch += frame
                if len(batch) >= _COALESCE:
                    tls.write(batch)
                    batch = bytearray()
        if batch:
            tls.write(batch)
        self.last_tx = self._loop.time()
        stats = self._owner.stats
        stats.frames_out += frames
        stats.bytes_out += nbytes

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        self.kick()

    # --- receiving -------------------------------------------------------------------

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._body is not None:
            return memoryview(self._body)[self._body_pos :]
        if not self._scratch:
            self._scratch = bytearray(_SCRATCH)
            self._view = memoryview(self._scratch)
        if self._start == self._end:
            self._start = self._end = 0
        elif self._start > 0 and _SCRATCH - self._end < _SCRATCH // 4:
            rest = bytes(self._view[self._start : self._end])
            self._view[: len(rest)] = rest
            self._start, self._end = 0, len(rest)
        return self._view[self._end :]

    def buffer_updated(self, nbytes: int) -> None:
        self.last_rx = self._loop.time()
        body = self._body
        if body is not None:
            self._body_pos += nbytes
            if self._body_pos == len(body):
                self._body = None
                self._deliver(bytes(body))
            return
        self._end += nbytes
        if not self.key:
            # start_tls may deliver the peer's hello before it returns to _accept_tls;
            # until the peer is identified only that hello may arrive
            if self._end - self._start > _HEADER.size + _MAX_HELLO:
                self.abort("data before the hello exchange", Refusal.BAD_HELLO)
            return
        self._parse()

    def _parse(self) -> None:
        view = self._view
        start, end = self._start, self._end
        while not self._done:
            avail = end - start
            if avail < _HEADER.size:
                break
            (length,) = _HEADER.unpack_from(view, start)
            if length > self._limit:
                self._oversized(length)
                return
            if avail - _HEADER.size >= length:
                payload = bytes(view[start + _HEADER.size : start + _HEADER.size + length])
                start += _HEADER.size + length
                self._start = start
                self._deliver(payload)
                continue
            if _HEADER.size + length > _SCRATCH:
                have = avail - _HEADER.size
                body = bytearray(length)
                body[:have] = view[start + _HEADER.size : end]
                self._body = body
                self._body_pos = have
                start = end = 0
            break
        self._start, self._end = start, end

    def _deliver(self, payload: bytes) -> None:
        if self.retired:
            return  # the peer gave this connection up; its newer one keeps the order
        if self.linked:
            if payload:
                self._owner._frame_in(self, payload)
        elif not self.authenticated:
            self._on_hello(payload)
        elif not self.decider and payload == _ACCEPT:
            self.link()
        else:
            self.abort("a frame before the connection was accepted", Refusal.BAD_HELLO)

    def _oversized(self, length: int) -> None:
        if not self.linked:
            self.abort(f"a {length}-byte frame during the handshake", Refusal.BAD_HELLO)
            return
        self._owner.stats.oversized_frames += 1
        self._owner._log.warning(
            "peer %s sent a %d-byte frame, over the %d-byte limit; closing that connection",
            self._owner._label(self.key),
            length,
            self._limit,
        )
        self._owner.penalise(self.key, "an oversized frame")
        self.abort("oversized frame")


def _check_limits(
    network: bytes,
    max_frame_bytes: int,
    max_queue_bytes: int,
    backoff: tuple[float, float],
    keepalive: tuple[float, float],
    handshakes: tuple[int, int],
) -> None:
    """Refuse a transport configuration that could not work, saying which setting."""
    if not 0 < len(network) <= _MAX_NETWORK_ID:
        raise ValueError(f"a network id is 1 to {_MAX_NETWORK_ID} bytes")
    if not 0 < max_frame_bytes < 2**32:
        raise ValueError("max_frame_bytes must be between 1 and 2**32 - 1")
    if max_queue_bytes < max_frame_bytes:
        raise ValueError("max_queue_bytes must hold at least one frame of max_frame_bytes")
    if not 0 < backoff[0] <= backoff[1]:
        raise ValueError("backoff needs 0 < backoff_initial <= backoff_max")
    keepalive_interval, idle_timeout = keepalive
    if idle_timeout <= 2 * keepalive_interval or keepalive_interval <= 0:
        raise ValueError("idle_timeout must exceed two keepalive intervals")
    if handshakes[0] < 1 or handshakes[1] < 1:
        raise ValueError("max_handshakes and max_handshakes_per_address must be at least 1")


def _known_peers(own_key: bytes, peers: Sequence[PeerInfo]) -> dict[bytes, PeerInfo]:
    """The peers by key, without this node; each with both host and port or neither,
    and a certificate for its own key."""
    known: dict[bytes, PeerInfo] = {}
    for peer in peers:
        if peer.key == own_key:
            continue  # a shared peer list may include this node
        if (peer.host is None) != (peer.port is None):
            raise ValueError(f"peer {peer.name or peer.key.hex()}: give both host and port")
        if certificate_key(peer.cert_pem) != peer.key:
            raise BadCertificate(
                f"peer {peer.name or peer.key.hex()}: the certificate is not for its key"
            )
        known[peer.key] = peer
    return known


class Transport:
    """Authenticated, framed links to the allow-listed peers in `peers`.

    Only those keys get through TLS; a connection must then say hello on the same
    `network_id`. Peers with `host` and `port` are dialled (with backoff, and again after
    every drop) until `close()`. Between two nodes at most one connection survives: when
    both dial at once, the one dialled by the smaller key (see the module notes).
    `on_frame(key, payload)` runs in the event loop, in order per peer;
    `on_peer_change(key, connected)` when a peer comes or goes. Everything here must be
    used from the loop that ran `start()`.

    Inbound connections still in their handshake hold one of `max_handshakes` slots, at
    most `max_handshakes_per_address` of them from one address (`address_group`), so
    one host holding idle sockets cannot keep the peers out. Refusals are counted by
    cause (`refused_by_cause`) and logged at most once per `refusal_log_interval`
    seconds per cause.
    """

    def __init__(
        self,
        keys: AccountKeys,
        cert_pem: bytes,
        network_id: str,
        listen_host: str,
        listen_port: int,
        peers: Sequence[PeerInfo],
        on_frame: Callable[[bytes, bytes], None],
        on_peer_change: Callable[[bytes, bool], None] | None = None,
        max_frame_bytes: int = 16 * 2**20,
        max_queue_bytes: int = 64 * 2**20,
        backoff_initial: float = 0.1,
        backoff_max: float = 5.0,
        handshake_timeout: float = 5.0,
        max_handshakes: int = 64,
        max_handshakes_per_address: int = 16,
        keepalive_interval: float = 5.0,
        idle_timeout: float = 20.0,
        penalty_s: float = 30.0,
        refusal_log_interval: float = 10.0,
    ) -> None:
        network = network_id.encode("utf-8")
        _check_limits(
            network,
            max_frame_bytes,
            max_queue_bytes,
            (backoff_initial, backoff_max),
            (keepalive_interval, idle_timeout),
            (max_handshakes, max_handshakes_per_address),
        )
        self._key = keys.public_key
        self._network = network
        self._hello = _HELLO_MAGIC + self._key + network
        self._listen = (listen_host, listen_port)
        self._peers: dict[bytes, PeerInfo] = _known_peers(self._key, peers)
        trusted = [peer.cert_pem for peer in self._peers.values()]
        self._server_ctx: ssl.SSLContext = server_context(keys, cert_pem, trusted)
        self._client_ctx: ssl.SSLContext = client_context(keys, cert_pem, trusted)
        self._on_frame = on_frame
        self._on_peer_change = on_peer_change
        self._max_frame = max_frame_bytes
        self._max_queue = max_queue_bytes
        self._backoff = (backoff_initial, backoff_max)
        self._handshake_timeout = handshake_timeout
        self._max_handshakes = max_handshakes
        self._max_handshakes_per_address = max_handshakes_per_address
        self._keepalive = (keepalive_interval, idle_timeout)
        self._penalty_s = penalty_s
        self._penalised: dict[bytes, float] = {}
        """Peer -> until when (loop time) it is refused, after a protocol violation."""
        self._random = random.Random()
        self._log = _NodeLog(log, {"node": self._key.hex()[:16]})
        self._refusals = RefusalLog(self._log, refusal_log_interval, self._now)
        self.stats = TransportStats()
        self._init_connections()

    def _init_connections(self) -> None:
        """The live state: the server, links, handshakes in flight, tasks."""
        self._loop: asyncio.AbstractEventLoop
        self._server: asyncio.Server | None = None
        self._links: dict[bytes, _Connection] = {}
        self._conns: set[_Connection] = set()
        self._pending: set[_Connection] = set()
        self._pending_from: dict[str, int] = {}
        """Inbound connections still in their handshake, by address (`address_group`)."""
        self._tasks: set[asyncio.Task[None]] = set()
        self._seen: set[bytes] = set()
        self._dialling: set[bytes] = set()  # peers with a dial of ours in flight
        self._parked: dict[bytes, _Connection] = {}  # inbound, waiting for that dial
        self._closing = False

    # --- public ----------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (port 0 picks a free port) and start dialling every peer with an address."""
        if self._server is not None or self._closing:
            raise RuntimeError("a transport starts once")
        self._loop = asyncio.get_running_loop()
        host, port = self._listen
        self._server = await self._loop.create_server(
            lambda: _Connection(self, None), host, port, reuse_address=True
        )
        for peer in self._peers.values():
            if peer.host is not None and peer.port is not None:
                self._spawn(self._dial_loop(peer, peer.host, peer.port))
        self._spawn(self._keepalive_loop())

    async def close(self) -> None:
        """Stop listening and dialling, close every connection and wait for the tasks."""
        if self._closing:
            return
        self._closing = True
        if self._server is None:
            return
        self._server.close()
        self._refusals.flush(final=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        conns = list(self._conns)
        for conn in conns:
            conn.close("transport closed")
        await asyncio.gather(*tasks, return_exceptions=True)
        waits = [asyncio.ensure_future(conn.closed.wait()) for conn in conns]
        if waits:  # a second for the TLS goodbyes, then cut what is left
            _, slow = await asyncio.wait(waits, timeout=1.0)
            for conn in conns:
                conn.abort("transport closed")
            if slow:
                _, stuck = await asyncio.wait(slow, timeout=1.0)
                for wait in stuck:
                    wait.cancel()
        await self._server.wait_closed()

    @property
    def listen_port(self) -> int:
        """The port actually listened on (after `start()`)."""
        if self._server is None or not self._server.sockets:
            raise RuntimeError("the transport is not listening; call start() first")
        return int(self._server.sockets[0].getsockname()[1])

    def send(self, peer: bytes, frame: bytes) -> bool:
        """Queue `frame` for `peer` without waiting; False when the peer is not connected,
        its send queue is full or the frame is over max_frame_bytes."""
        conn = self._links.get(peer)
        if conn is None:
            self.stats.not_connected += 1
            return False
        if len(frame) > self._max_frame:
            self._refuse_oversized(len(frame))
            return False
        if conn.enqueue(frame):
            return True
        self.stats.queue_drops += 1
        return False

    def broadcast(self, frame: bytes) -> int:
        """Queue `frame` for every connected peer; returns how many took it."""
        if len(frame) > self._max_frame:
            self._refuse_oversized(len(frame))
            return 0
        sent = 0
        for conn in self._links.values():
            if conn.enqueue(frame):
                sent += 1
            else:
                self.stats.queue_drops += 1
        return sent

    def connected(self) -> tuple[bytes, ...]:
        """The keys of the connected peers, sorted."""
        return tuple(sorted(self._links))

    def links(self) -> tuple[LinkInfo, ...]:
        """The live peer connections, sorted by key."""
        out = []
        for key in sorted(self._links):
            conn = self._links[key]
            peer = conn.transport.get_extra_info("peername") if conn.transport else None
            remote = (str(peer[0]), int(peer[1])) if peer else None
            out.append(LinkInfo(key, conn.outbound, remote))
        return tuple(out)

    def refused_by_cause(self) -> dict[str, int]:
        """Connections refused since start, by cause (every cause, zeros included)."""
        return {str(cause): count for cause, count in self._refusals.counts.items()}

    @property
    def open_connections(self) -> int:
        """Sockets open right now, authenticated or not (at most one per peer once settled)."""
        return len(self._conns)

    # --- connection callbacks --------------------------------------------------------

    def _admit(self, conn: _Connection) -> Refusal | None:
        """Take an inbound connection into a handshake slot, or say why not: every slot
        taken, or as many as one address may hold (so one address cannot keep the
        others out)."""
        self._conns.add(conn)
        if self._closing or len(self._pending) >= self._max_handshakes:
            return Refusal.BUSY
        group = address_group(conn.address)
        held = self._pending_from.get(group, 0)
        if held >= self._max_handshakes_per_address:
            return Refusal.ADDRESS_BUSY
        self._pending.add(conn)
        self._pending_from[group] = held + 1
        return None

    def _release(self, conn: _Connection) -> None:
        """Free the handshake slot `conn` held, if any."""
        if conn not in self._pending:
            return
        self._pending.discard(conn)
        group = address_group(conn.address)
        left = self._pending_from[group] - 1
        if left:
            self._pending_from[group] = left
        else:
            del self._pending_from[group]

    def _authenticated(self, conn: _Connection) -> None:
        """The hello checked out; the decider picks the connection to keep, the other
        side waits for its accept."""
        self._release(conn)
        if not conn.decider:
            return
        key = conn.key
        link = self._links.get(key)
        if link is not None:
            link.enqueue(b"")  # if the old link is dead, this write finds out soon
            conn.close("this peer is already connected")
            return
        if key in self._dialling and not conn.outbound:
            parked = self._parked.pop(key, None)
            if parked is not None:
                parked.close("superseded by a newer connection")
            self._parked[key] = conn  # our own dial, if it gets through, is kept instead
            self._log.debug("%s dialled us while we dial it: waiting", self._label(key))
            return
        parked = self._parked.pop(key, None)
        if parked is not None:
            parked.close("the connection this node dialled is kept")
        conn.accept()

    def _link(self, conn: _Connection) -> None:
        key = conn.key
        old = self._links.get(key)
        self._links[key] = conn
        if old is not None:
            # only on the non-deciding side: the decider accepted this one because it had
            # no connection, so the old one is dead to it (whatever still arrives there
            # is dropped rather than delivered out of order)
            self.stats.duplicates_closed += 1
            old.retired = True
            conn.queue, old.queue = old.queue, conn.queue
            conn.queued, old.queued = old.queued, 0
            old.close("replaced by a newer connection")
            self._log.debug("replaced the connection to %s", self._label(key))
            conn.kick()
            return
        self.stats.connections += 1
        if key in self._seen:
            self.stats.reconnects += 1
        self._seen.add(key)
        self._log.info(
            "connected to %s (%s)", self._label(key), "dialled" if conn.outbound else "accepted"
        )
        self._notify(key, True)

    def _dial_finished(self, key: bytes) -> None:
        self._dialling.discard(key)
        parked = self._parked.pop(key, None)
        if parked is None or parked.done:
            return
        if key in self._links:
            parked.close("the connection this node dialled is kept")
        else:
            parked.accept()  # our dial did not get through: keep the peer's

    def _gone(self, conn: _Connection) -> None:
        self._conns.discard(conn)
        self._release(conn)
        if self._parked.get(conn.key) is conn:
            del self._parked[conn.key]
        if not conn.linked:
            if self._closing:
                return
            if conn.authenticated:
                self.stats.duplicates_closed += 1
                self._log.debug("closed a second connection to %s", self._label(conn.key))
            else:
                self._refused(
                    conn.cause or Refusal.CLOSED,
                    conn.address or "?",
                    conn.reason or "closed before the hello",
                    inbound=not conn.outbound,
                )
            return
        if self._links.get(conn.key) is conn:
            del self._links[conn.key]
            self._log.info("disconnected from %s: %s", self._label(conn.key), conn.reason)
            self._notify(conn.key, False)

    def _frame_in(self, conn: _Connection, payload: bytes) -> None:
        stats = self.stats
        stats.frames_in += 1
        stats.bytes_in += len(payload)
        try:
            self._on_frame(conn.key, payload)
        except Exception:
            stats.callback_errors += 1
            self._log.exception("on_frame failed for a frame from %s", self._label(conn.key))

    def _notify(self, key: bytes, up: bool) -> None:
        if self._on_peer_change is None:
            return
        try:
            self._on_peer_change(key, up)
        except Exception:
            self.stats.callback_errors += 1
            self._log.exception("on_peer_change failed for %s", self._label(key))

    def _refused(self, cause: Refusal, address: str, detail: str, inbound: bool) -> None:
        self.stats.handshakes_refused += 1
        self._refusals.refused(cause, address, detail, inbound)

    def _now(self) -> float:
        return self._loop.time()

    def _refuse_oversized(self, size: int) -> None:
        self.stats.oversized_frames += 1
        self._log.warning(
            "not sending a %d-byte frame: over the %d-byte limit", size, self._max_frame
        )

    def _label(self, key: bytes) -> str:
        peer = self._peers.get(key)
        return f"{peer.name} ({key.hex()[:16]})" if peer and peer.name else key.hex()[:16]

    # --- tasks -----------------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _jitter(self, delay: float) -> float:
        return delay * (0.5 + self._random.random() / 2)

    def penalise(self, key: bytes, what: str) -> None:
        """Refuse `key` for `penalty_s` after a protocol violation (an allowed peer
        misbehaving must not be able to repeat it at once)."""
        self.stats.penalties += 1
        self._penalised[key] = self._loop.time() + self._penalty_s
        self._log.warning("%s refused for %.0f s after %s", self._label(key), self._penalty_s, what)

    def penalised_until(self, key: bytes) -> float | None:
        """Seconds left of `key`'s penalty, None if it has none."""
        until = self._penalised.get(key)
        if until is None:
            return None
        left = until - self._loop.time()
        if left <= 0:
            del self._penalised[key]
            return None
        return left

    async def _dial_loop(self, peer: PeerInfo, host: str, port: int) -> None:
        initial, cap = self._backoff
        delay = initial
        while not self._closing:
            link = self._links.get(peer.key)
            if link is not None:
                await link.closed.wait()
                delay = initial
                await asyncio.sleep(self._jitter(delay))
                continue
            penalty = self.penalised_until(peer.key)
            if penalty is not None:
                await asyncio.sleep(penalty)
                continue
            if await self._dial(peer, host, port):
                delay = initial
                continue
            await asyncio.sleep(self._jitter(delay))
            delay = min(delay * 2, cap)

    async def _dial(self, peer: PeerInfo, host: str, port: int) -> bool:
        """One attempt: True once the connection is accepted (kept), False otherwise."""
        conn = _Connection(self, peer.key)
        self._dialling.add(peer.key)
        try:
            # TLS and hello, then perhaps the decider finishing a dial of its own
            async with asyncio.timeout(2 * self._handshake_timeout):
                await self._loop.create_connection(
                    lambda: conn,
                    host,
                    port,
                    ssl=self._client_ctx,
                    ssl_handshake_timeout=self._handshake_timeout,
                    ssl_shutdown_timeout=self._handshake_timeout,
                )
                return await asyncio.shield(conn.ready)
        except Exception as exc:  # OSError mostly; nothing may end the dial loop
            if conn.transport is None:  # never got as far as a TLS connection
                if isinstance(exc, ssl.SSLError):
                    self._refused(
                        Refusal.TLS,
                        host,
                        f"dialling {self._label(peer.key)}: TLS handshake failed: {exc!r}",
                        inbound=False,
                    )
                else:
                    self.stats.dial_failures += 1
                    level = logging.DEBUG if isinstance(exc, OSError) else logging.WARNING
                    self._log.log(level, "dialling %s failed: %r", self._label(peer.key), exc)
            else:
                conn.abort("the handshake did not finish in time", Refusal.TIMEOUT)
            return False
        finally:
            self._dial_finished(peer.key)

    async def _keepalive_loop(self) -> None:
        interval, idle = self._keepalive
        while True:
            await asyncio.sleep(interval / 2)
            self._refusals.flush()
            now = self._loop.time()
            for conn in list(self._links.values()):
                if now - conn.last_rx > idle:
                    self.stats.idle_timeouts += 1
                    self._log.warning("%s silent for %.1f s; closing", self._label(conn.key), idle)
                    conn.abort("idle timeout")
                elif now - conn.last_tx >= interval:
                    conn.enqueue(b"")
