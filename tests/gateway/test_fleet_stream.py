"""Streaming a simulated fleet over MQTT, in a few seconds: a private Mosquitto (started
per test on a free port) and the gateway's MQTT intake on an in-process LocalChain (the
`world` of the gateway service tests). Acks are matched to readings per device across a
pool of connections; refusals are counted by code, an unanswered reading as `no_ack`.
Over HTTP, a reading whose connection is cut before the answer is sent again and
answered once (a duplicate if the gateway had taken it). Plus the broker/prefix options
(`devices simulate` refuses bad ones before it starts) and the state history read from a
device's audit trail."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections import Counter
from collections.abc import AsyncIterator, Generator
from dataclasses import replace

import pytest
import uvicorn

from medchain.app import DeviceKind as ChainDeviceKind
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import (
    DEFAULT_TOPIC_PREFIX,
    DEVICES_PER_CONNECTION,
    FLOOD_BURST,
    MAX_CONNECTIONS,
    DeviceKind,
    FleetRun,
    MisbehavingDevice,
    Misbehaviour,
    MqttConfig,
    MqttIngest,
    MqttTarget,
    SimulatedDevice,
    Transport,
    check_topic_prefix,
    mqtt_target,
    parse_broker,
    stream_fleet,
    verify_proof,
)
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import create_gateway_app
from medchain.types import MedchainError
from tests.gateway.test_mqtt import Broker, broker  # noqa: F401  (the fixture)
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)
from tests.waiting import until

PREFIX = "medchain/devices"
READINGS = 4


def test_fleet_streams_over_mqtt(world: World, broker: Broker) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    ingest = MqttIngest(service, MqttConfig(port=broker.port, topic_prefix=PREFIX), threads=False)
    patient = format_address(world.patient.address)
    honest = [world.device() for _ in range(3)]
    bad = MisbehavingDevice(
        DeviceKind.PULSE_OXIMETER, patient, Misbehaviour.NON_CONFORMING, keys=AccountKeys.generate()
    )
    flood = MisbehavingDevice(
        DeviceKind.PULSE_OXIMETER, patient, Misbehaviour.FLOOD, keys=AccountKeys.generate()
    )
    for d in (bad, flood):
        world.patient.register_device(
            d.keys, world.patient.address, ChainDeviceKind.PULSE_OXIMETER, "bad"
        )
    stranger = SimulatedDevice(DeviceKind.THERMOMETER, patient, keys=AccountKeys.generate())
    devices = [*honest, bad, flood, stranger]
    target = MqttTarget(port=broker.port, topic_prefix=PREFIX, connections=2, ack_timeout_s=3)

    async def run() -> tuple[FleetRun, FleetRun]:
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await asyncio.wait_for(ingest.connected.wait(), 60)
        streamed = await stream_fleet(
            "http://unused", devices, rate_per_minute=60_000, readings=READINGS, mqtt=target
        )
        # nobody answers on another prefix: each reading waits its bounded time, no_ack
        silent = replace(target, topic_prefix="nobody/listens", ack_timeout_s=0.2)
        unanswered = await stream_fleet(
            "http://unused", honest[:1], rate_per_minute=60_000, readings=2, mqtt=silent
        )
        stop.set()
        await asyncio.wait_for(task, 60)
        return streamed, unanswered

    streamed, unanswered = asyncio.run(run())
    assert streamed.sent == READINGS * (len(devices) - 1) + READINGS * FLOOD_BURST
    # the flood's bursts are published at once, in order: its first 20 (the gateway's
    # burst; the test clock stands still) are accepted, the rest rate-limited, none
    # overtaken by a later one (that would be `replayed`)
    burst = service.config.rate_burst
    assert streamed.refused == Counter(
        {
            "unknown_device": READINGS,
            "non_conforming": READINGS - 1,
            "rate_limited": READINGS * FLOOD_BURST - burst,
        }
    )
    flooded = streamed.accepted[flood.keys.address]
    assert len(flooded) == burst and len(set(flooded)) == burst
    assert streamed.refusals[bad.keys.address] == {"non_conforming": READINGS - 1}
    accepted = streamed.accepted
    assert len(accepted[bad.keys.address]) == 1  # its first reading is honest
    assert stranger.keys.address not in accepted
    assert unanswered.refused == Counter({"no_ack": 2})
    assert service.pending_count == READINGS * len(honest) + 1 + burst

    service.flush()
    for device in honest:
        ids = accepted[device.keys.address]
        assert len(ids) == READINGS  # in order: an overtaken reading would be `replayed`
        for rid in ids:
            status = service.status(rid)
            assert status.state == "committed" and status.committed is not None
            on_chain = world.chain.batch(status.committed.batch_id)
            assert on_chain is not None and verify_proof(status.committed.proof, on_chain.root)
    struck = world.chain.device(bad.keys.address)
    assert struck is not None and struck.strikes == 1  # one strike per offence per window


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the test's loop, not the process's signals


def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


class _CuttingProxy:
    """Between a device and the gateway: the first connection is reset before the device
    hears an answer, after its request reached the gateway (`reached`) or before; the
    others are passed through, the gateway's answers kept in `answers`."""

    def __init__(self, upstream: int, reached: bool) -> None:
        self.upstream, self.reached = upstream, reached
        self.cut = 0
        self.answers: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        try:
            if self.cut == 0:
                self.cut += 1
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.lower().split(b"\r\n")
                    if line.startswith(b"content-length:")
                )
                body = await reader.readexactly(length)
                if self.reached:
                    up_writer.write(head + body)
                    assert await up_reader.read(65_536)  # the gateway answered: lost here
                writer.transport.abort()  # a reset, as when a server drops the connection
                return
            request = await reader.read(65_536)
            while request:
                up_writer.write(request)
                answer = await up_reader.read(65_536)
                self.answers.append(answer)
                writer.write(answer)
                await writer.drain()
                request = await reader.read(65_536)
        finally:
            up_writer.close()
            writer.close()


@contextlib.asynccontextmanager
async def _gateway_behind(
    proxy: _CuttingProxy, app: object, gateway: socket.socket, front: socket.socket
) -> AsyncIterator[None]:
    server = _Server(uvicorn.Config(app, log_config=None, access_log=False))  # type: ignore[arg-type]
    serving = asyncio.create_task(server.serve(sockets=[gateway]))
    relay = await asyncio.start_server(proxy.handle, sock=front)
    try:
        await until(lambda: server.started, what="the gateway to serve")
        yield
    finally:
        relay.close()
        server.should_exit = True
        await serving


@pytest.mark.parametrize("reached", [True, False], ids=["answer-lost", "request-lost"])
def test_a_reading_whose_connection_is_cut_is_sent_again_and_counted_once(
    world: World,  # noqa: F811
    reached: bool,
) -> None:
    service = world.service(ReadingIndex(":memory:"))
    app = create_gateway_app(service, background=False, threads=False)
    device = world.device()
    gateway, front = _listening(), _listening()
    proxy = _CuttingProxy(gateway.getsockname()[1], reached)
    url = f"http://127.0.0.1:{front.getsockname()[1]}"

    async def run() -> FleetRun:
        async with _gateway_behind(proxy, app, gateway, front):
            return await stream_fleet(url, [device], rate_per_minute=60, readings=1)

    run_ = asyncio.run(run())
    assert proxy.cut == 1
    assert run_.refused == Counter() and run_.unreachable == Counter(), run_.unreachable
    assert sum(run_.resent.values()) == 1, run_.resent
    (rid,) = run_.accepted[device.keys.address]
    (answer,) = proxy.answers
    assert b" 202 " in answer.split(b"\r\n")[0]
    # taken the first time: the resend is a duplicate, neither refused nor struck
    assert (b'"duplicate":true' in answer) is reached
    assert service.status(rid).state == "committed"  # once: the gateway flushed on exit
    assert list(service.index.batch_readings().values()) == [[rid]]
    struck = world.chain.device(device.keys.address)
    assert struck is not None and struck.strikes == 0


def test_unreachable_broker_is_a_clear_error(broker: Broker) -> None:  # noqa: F811
    broker.stop()
    device = SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)))
    with pytest.raises(MedchainError, match=rf"MQTT broker at 127.0.0.1:{broker.port}"):
        asyncio.run(
            stream_fleet(
                "http://unused",
                [device],
                rate_per_minute=60,
                readings=1,
                mqtt=MqttTarget(port=broker.port),
            )
        )


def test_connection_pool_is_bounded() -> None:
    target = MqttTarget()
    assert target.pool_size(1) == 1
    assert target.pool_size(DEVICES_PER_CONNECTION) == 1
    assert target.pool_size(DEVICES_PER_CONNECTION + 1) == 2
    assert target.pool_size(100_000) == MAX_CONNECTIONS
    assert MqttTarget(connections=8).pool_size(3) == 3


def test_broker_and_prefix_options() -> None:
    assert parse_broker("127.0.0.1:1884") == ("127.0.0.1", 1884)
    assert parse_broker("broker.local") == ("broker.local", 1883)
    assert parse_broker("[::1]:1885") == ("::1", 1885)
    assert parse_broker("[::1]") == ("::1", 1883)
    for bad in (":1883", "host:0", "host:x", "host:70000", ""):
        with pytest.raises(MedchainError, match="expected HOST:PORT"):
            parse_broker(bad)
    assert check_topic_prefix("site/devices/") == "site/devices"
    for bad in ("", "a/+", "a/#", "/a"):
        with pytest.raises(MedchainError, match="--topic-prefix"):
            check_topic_prefix(bad)


def test_mqtt_target_goes_with_the_mqtt_transport_only() -> None:
    assert mqtt_target(Transport.HTTP, None, DEFAULT_TOPIC_PREFIX) is None
    assert mqtt_target(Transport.MQTT, None, DEFAULT_TOPIC_PREFIX) == MqttTarget()
    assert mqtt_target(Transport.MQTT, "[::1]:1884", "site/devices/") == MqttTarget(
        "::1", 1884, "site/devices"
    )
    for where, prefix in [("127.0.0.1:1884", DEFAULT_TOPIC_PREFIX), (None, "site/devices")]:
        with pytest.raises(MedchainError, match="go with --transport mqtt"):
            mqtt_target(Transport.HTTP, where, prefix)


def test_accepted_ids_are_listed_once_in_the_order_accepted() -> None:
    run = FleetRun()
    a, b = b"\xaa" * 20, b"\xbb" * 20
    for device, rid in [(a, b"\x01"), (b, b"\x02"), (a, b"\x03"), (b, b"\x02")]:
        run._accept(device, rid)  # b's second is a resend answered as a duplicate
    assert run.accepted_count == 4
    assert run.accepted_ids() == [b"\x01", b"\x03", b"\x02"]
