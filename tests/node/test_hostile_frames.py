"""A property test against a live validator process: generated and mutated frames
(deep nesting, truncation, huge length prefixes, wrong types, signed nonsense) on
every P2P channel the node speaks, sent by the allowed observer identity, and the
same kinds of bytes to every API route that decodes bytes. Each frame is dropped and
counted, each answer is a 4xx, and the validator commits throughout. Marked slow;
`make test` runs it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.client import HttpChain, MedchainClient
from medchain.consensus import Kind, SyncRequest, sign, wire
from medchain.consensus._messages import Checkpoint, Vote
from medchain.crypto import AccountKeys, load_keys
from medchain.node import (
    GENESIS_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    network_id,
    read_config,
    read_genesis,
)
from medchain.node._blobs import BLOB_CHANNEL
from medchain.node._runtime import CONSENSUS_CHANNEL, TX_CHANNEL
from medchain.offchain import cid_for
from medchain.p2p import PeerInfo, Transport
from medchain.types import decode, encode
from tests.api.harness import upload_headers
from tests.hostile import DEEP, hostile
from tests.node.netharness import LiveNet, live_net, wait_for
from tests.waiting import until

pytestmark = pytest.mark.slow

T = TypeVar("T")
TARGET = "node0"
OBSERVER = "node1"
MARKER = b"\x7f"
"""A frame on a channel nobody speaks: counted once handled, and frames from one peer
are handled in order, so its count says every frame before it was handled too."""
UNKNOWN = "medchain_p2p_unknown_channel_frames_total"
DROPPED = {
    CONSENSUS_CHANNEL: "medchain_consensus_dropped_malformed_total",
    TX_CHANNEL: 'medchain_txs_rejected_total{source="peer"}',
    BLOB_CHANNEL: 'medchain_blobs_refused_total{reason="malformed"}',
}
DECODING_ROUTES = ("/v1/txs", "/v1/txs/batch", "/v1/records", "/v1/search", "/v1/blobs/batch")


class Observer:
    """The observer's identity in this process, its transport on a loop of its own
    thread so that hypothesis's synchronous examples can send through it."""

    def __init__(self, net: LiveNet) -> None:
        home = net.node(OBSERVER).home
        self.keys: AccountKeys = load_keys(home / NODE_KEY_FILE)
        config = read_config(home)
        target = next(p for p in config.peers if p.name == TARGET)
        self.target = target.key
        self.received: list[bytes] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.transport = Transport(
            self.keys,
            (home / NODE_CERT_FILE).read_bytes(),
            network_id(read_genesis(home / GENESIS_FILE)),
            "127.0.0.1",
            0,
            [PeerInfo(target.key, target.cert_pem, target.host, target.port, TARGET)],
            on_frame=lambda _peer, frame: self.received.append(frame[:1]),
            backoff_initial=0.05,
            backoff_max=0.5,
        )
        self.run(self.transport.start())
        self.run(self._connected())

    def run(self, coro: Coroutine[Any, Any, T], timeout_s: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout_s)

    async def _connected(self) -> None:
        await until(lambda: self.target in self.transport.connected(), what="the link")

    def send(self, *frames: bytes) -> None:
        async def send_all() -> None:
            for frame in frames:
                assert self.transport.send(self.target, frame), "the link to the node is down"

        self.run(send_all())

    def close(self) -> None:
        self.run(self.transport.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


@contextmanager
def observer(net: LiveNet) -> Iterator[Observer]:
    peer = Observer(net)
    try:
        yield peer
    finally:
        peer.close()


def metrics(net: LiveNet) -> dict[str, float]:
    text = net.http.get(f"{net.url(TARGET)}/metrics", timeout=5.0).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, value = line.rsplit(" ", 1)
            samples[key] = float(value)
    return samples


def consensus_frames(peer: Observer, chain_id: str, height: int) -> st.SearchStrategy[bytes]:
    """Well-formed consensus messages signed by the observer (which may ask for blocks
    but not vote), and every hostile form of them."""
    me = peer.keys.public_key
    heights = st.one_of(st.integers(0, height + 5), st.integers(0, 2**63 - 1))
    signed = st.one_of(
        st.builds(SyncRequest, heights, st.just(me)),
        st.builds(
            Vote,
            st.sampled_from((Kind.PREPARE, Kind.COMMIT)),
            heights,
            st.integers(0, 3),
            st.binary(min_size=32, max_size=32),
            st.just(me),
        ),
        st.builds(Checkpoint, heights, st.binary(max_size=32), st.binary(max_size=32), st.just(me)),
    ).map(lambda message: wire(sign(chain_id, message, peer.keys)))
    return st.one_of(signed, hostile(signed))


def gossip_frames(net: LiveNet) -> st.SearchStrategy[bytes]:
    txs = st.integers(1, 3).map(
        lambda n: encode(tuple(tx.encoded for tx in net.transfers(n)), tuple[bytes, ...])
    )
    return hostile(txs)


def blob_frames() -> st.SearchStrategy[bytes]:
    request_ids = st.binary(min_size=4, max_size=4)
    cids = st.one_of(
        st.binary(max_size=40).map(lambda b: cid_for(b).encode()), st.binary(max_size=80)
    )
    well_formed = st.one_of(
        st.tuples(request_ids, cids).map(lambda t: b"\x01" + t[0] + t[1]),
        st.tuples(request_ids, st.integers(0, 255), st.binary(max_size=64)).map(
            lambda t: b"\x02" + t[0] + bytes([t[1]]) + t[2]
        ),
    )
    return st.one_of(well_formed, hostile(well_formed))


def registered_gateway(net: LiveNet) -> AccountKeys:
    """An edge gateway registered by a founding hospital's admin, so that bulk uploads
    signed by it get past the signature check and their bytes reach the decoder."""
    (gateway,) = net.fund(1)
    with HttpChain(net.url(TARGET)) as chain:
        MedchainClient(net.founder_admin(), chain).register_gateway(gateway.address, "ward 3")
    return gateway


def api_requests(data: bytes, gateway: AccountKeys, chain_id: str) -> dict[str, dict[str, Any]]:
    owner = AccountKeys.generate().address_text
    return {
        "/v1/txs": {"json": {"tx": data.hex()}},
        "/v1/txs/batch": {"json": {"txs": [data.hex()]}},
        "/v1/records": {"json": {"tx": data.hex(), "ciphertext": "00"}},
        "/v1/search": {"json": {"owner": owner, "token": data.hex()}},
        "/v1/blobs/batch": {"content": data, "headers": upload_headers(gateway, chain_id, data)},
    }


def assert_refused(
    http: httpx.Client, url: str, data: bytes, gateway: AccountKeys, chain_id: str
) -> None:
    """Every route that decodes bytes refuses these with a 4xx (a batch: each item)."""
    for path, kwargs in api_requests(data, gateway, chain_id).items():
        response = http.post(url + path, **kwargs)
        if path == "/v1/txs/batch" and response.status_code == 200:
            assert all("error" in r for r in response.json()["results"]), response.text
            continue
        if path == "/v1/blobs/batch" and response.status_code == 200:
            # a registered gateway's well-formed batch is stored: not hostile at all
            assert len(response.json()["cids"]) == len(decode(tuple[bytes, ...], data))
            continue
        assert 400 <= response.status_code < 500, (path, response.status_code, response.text)
        assert response.json()["error"]["code"], (path, response.text)


def test_no_frame_or_body_stops_a_live_validator(tmp_path: Path) -> None:
    with live_net(tmp_path, 1, "pbft", observers=1, block_interval_ms=100) as net:
        net.start(wait=False)  # /health is 503 until its one peer, the observer, is linked
        net.wait_height([TARGET], 2, 120)
        url = net.url(TARGET)
        chain_id = read_genesis(net.node(TARGET).home / GENESIS_FILE).chain_id
        gateway = registered_gateway(net)
        with observer(net) as peer:
            before = metrics(net)
            sent = {channel: 0 for channel in DROPPED}
            markers = [0]

            def handled() -> None:
                """Send the marker and wait until the node counted it: every frame sent
                before it was handled by then."""
                markers[0] += 1
                peer.send(MARKER)
                expected = before.get(UNKNOWN, 0.0) + markers[0]
                wait_for(lambda: metrics(net).get(UNKNOWN, 0.0) >= expected, 60, "the marker")

            height = net.height(TARGET)
            frames = st.one_of(
                st.tuples(st.just(CONSENSUS_CHANNEL), consensus_frames(peer, chain_id, height)),
                st.tuples(st.just(TX_CHANNEL), gossip_frames(net)),
                st.tuples(st.just(BLOB_CHANNEL), blob_frames()),
            )

            @settings(
                max_examples=120,
                derandomize=True,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(frames, st.data())
            def dropped_and_refused(frame: tuple[int, bytes], data: st.DataObject) -> None:
                channel, payload = frame
                peer.send(bytes([channel]) + payload)
                sent[channel] += 1
                handled()
                assert net.running() == [TARGET], "the validator stopped"
                body = data.draw(hostile(st.just(payload)))
                assert_refused(net.http, url, body, gateway, chain_id)

            dropped_and_refused()
            # the frame that once halted a validator, on every channel and route
            peer.send(*(bytes([channel]) + DEEP for channel in DROPPED))
            handled()
            assert_refused(net.http, url, DEEP, gateway, chain_id)

            after = metrics(net)
            for channel, sample in DROPPED.items():
                assert after.get(sample, 0.0) > before.get(sample, 0.0), (channel, sample)
            assert after.get("medchain_p2p_callback_errors_total", 0.0) == 0
            assert peer.target in peer.transport.connected(), "the observer lost its link"
        height = net.height(TARGET)
        net.wait_height([TARGET], height + 3, 60)
        log = net.log(TARGET)
        assert "Traceback" not in log and "stopping the node" not in log
