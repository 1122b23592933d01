"""MQTT intake against a real Mosquitto (started per test on a free 127.0.0.1 port) and a
GatewayService on an in-process LocalChain: simulated devices publish signed readings,
get their acks, and the readings are batched and committed; a reading on another
device's topic and a malformed payload are refused on the ack topic; after a broker
restart the ingest reconnects by itself."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiomqtt
import pytest

from medchain.crypto import format_address
from medchain.gateway import (
    CheckedReading,
    DeviceKind,
    MqttConfig,
    MqttIngest,
    SimulatedDevice,
    acks_topic,
    reading_to_json,
    readings_topic,
    sign_reading,
    start_mqtt,
    verify_proof,
)
from medchain.gateway._config import GatewayConfig, GatewayConfigError, parse_config
from medchain.gateway._index import ReadingIndex
from medchain.gateway._service import Accepted
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)
from tests.waiting import until, wait_until

PREFIX = "medchain/devices"
WAIT_S = 60.0
"""A wait for the broker or the ingest: long, since a busy machine may be slow to answer."""


def _mosquitto() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        pytest.fail(
            "the Mosquitto broker is not installed: `make install` installs it "
            "(Debian: apt-get install mosquitto)"
        )
    return found


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Broker:
    """A private Mosquitto: listens only on 127.0.0.1:port, no persistence."""

    def __init__(self, binary: str, conf: Path, port: int) -> None:
        self.binary, self.conf, self.port = binary, conf, port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        proc = self.proc

        def listening() -> bool:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"mosquitto exited with {proc.returncode}: {err}")
            with socket.create_connection(("127.0.0.1", self.port)):
                return True

        wait_until(listening, WAIT_S, f"mosquitto on 127.0.0.1:{self.port}", ignoring=(OSError,))

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    port = _free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "log_dest stderr\nlog_type error\n"
    )
    b = Broker(_mosquitto(), conf, port)
    b.start()
    yield b
    b.stop()


async def _ack(client: aiomqtt.Client, topic: str, payload: bytes) -> dict[str, Any]:
    """Publish one payload and wait for the one ack it earns."""
    await client.publish(topic, payload, qos=1)
    async with asyncio.timeout(WAIT_S):
        message = await anext(aiter(client.messages))
    assert isinstance(message.payload, bytes)
    answer: dict[str, Any] = json.loads(message.payload)
    return answer


def _device_client(port: int, name: str) -> aiomqtt.Client:
    return aiomqtt.Client("127.0.0.1", port, identifier=name)


def test_mqtt_readings_end_to_end(world: World, broker: Broker) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    ingest = MqttIngest(
        service,
        MqttConfig(port=broker.port, topic_prefix=PREFIX),
        threads=False,
        reconnect_min_s=0.05,
    )
    devices: list[SimulatedDevice] = [world.device() for _ in range(2)]
    names = [format_address(d.keys.address) for d in devices]

    async def run() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(ingest.run(stop))
        await asyncio.wait_for(ingest.connected.wait(), WAIT_S)
        ids = []
        async with _device_client(broker.port, "devices") as client:
            await client.subscribe(acks_topic(PREFIX, "+"), qos=1)
            for _ in range(3):
                for sim, name in zip(devices, names, strict=True):
                    signed = sim.next_reading()
                    topic = readings_topic(PREFIX, name)
                    ack = await _ack(client, topic, reading_to_json(signed))
                    assert ack["accepted"], ack
                    assert ack["id"] == signed.reading_id.hex() and not ack["duplicate"]
                    ids.append(signed.reading_id)
            # another device's topic: refused, and the service never sees it
            stray = devices[1].next_reading()
            ack = await _ack(client, readings_topic(PREFIX, names[0]), reading_to_json(stray))
            assert not ack["accepted"] and ack["error"] == "wrong_topic", ack
            assert ack["id"] == stray.reading_id.hex() and names[1] in ack["message"]
            assert service.status(stray.reading_id).state == "unknown"
            # a malformed payload, and a replayed sequence number, each get a refusal
            ack = await _ack(client, readings_topic(PREFIX, names[0]), b"{nope")
            assert not ack["accepted"] and ack["error"] == "malformed", ack
            old = sign_reading(devices[0].keys, 0, 1, devices[0].next_reading().reading.observation)
            ack = await _ack(client, readings_topic(PREFIX, names[0]), reading_to_json(old))
            assert ack["error"] == "replayed" and ack["status"] == 409, ack

        assert service.pending_count == 6
        assert len(service.flush()) == 2  # 6 readings, 5 a batch
        for rid in ids:
            status = service.status(rid)
            assert status.state == "committed" and status.committed is not None
            on_chain = world.chain.batch(status.committed.batch_id)
            assert on_chain is not None and verify_proof(status.committed.proof, on_chain.root)

        # the broker goes away and comes back: the ingest reconnects by itself
        broker.stop()
        await until(lambda: not ingest.connected.is_set(), WAIT_S, "the ingest to notice")
        broker.start()
        await until(
            lambda: ingest.connected.is_set() and ingest.connections == 2,
            WAIT_S,
            "the ingest to reconnect",
        )
        async with _device_client(broker.port, "devices-again") as client:
            await client.subscribe(acks_topic(PREFIX, names[1]), qos=1)
            signed = devices[1].next_reading()
            ack = await _ack(client, readings_topic(PREFIX, names[1]), reading_to_json(signed))
            assert ack["accepted"] and ack["id"] == signed.reading_id.hex(), ack

        stop.set()
        await asyncio.wait_for(task, WAIT_S)

    asyncio.run(run())


def test_a_gateway_stopped_while_connecting_never_serves_mqtt(
    world: World,  # noqa: F811
    broker: Broker,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The HTTP server failed to start (its port taken) while the broker was answering:
    the ingest leaves without consuming or claiming to be subscribed."""
    ingest = MqttIngest(
        world.service(ReadingIndex(":memory:")),
        MqttConfig(port=broker.port, topic_prefix=PREFIX),
        threads=False,
    )
    stop = asyncio.Event()
    subscribe = aiomqtt.Client.subscribe

    async def stopped_meanwhile(client: aiomqtt.Client, *args: Any, **kwargs: Any) -> Any:
        result = await subscribe(client, *args, **kwargs)
        stop.set()
        return result

    monkeypatch.setattr(aiomqtt.Client, "subscribe", stopped_meanwhile)
    with caplog.at_level("INFO", logger="medchain.gateway.mqtt"):
        asyncio.run(asyncio.wait_for(ingest.run(stop), WAIT_S))
    assert ingest.connections == 0 and not ingest.connected.is_set()
    assert "subscribed" not in caplog.text


def test_mqtt_config_round_trip_and_errors() -> None:
    config = GatewayConfig(mqtt=MqttConfig(host="broker.local", port=8883, tls=True))
    assert parse_config(json.loads(config.to_json())) == config
    assert parse_config(json.loads(GatewayConfig().to_json())).mqtt is None
    assert start_mqtt(None, GatewayConfig()) is None  # type: ignore[arg-type]
    for bad, says in [
        ({"prt": 1883}, "unknown setting"),
        ({"port": 0}, "mqtt.port"),
        ({"topic_prefix": "a/#"}, "wildcards"),
        ({"topic_prefix": "/a"}, "leading"),
        ({"cert_file": "c.pem", "tls": True}, "go together"),
        ({"ca_file": "ca.pem"}, "tls is off"),
        ({"password": "x"}, "needs mqtt.username"),
        ("yes", "must be an object"),
    ]:
        with pytest.raises(GatewayConfigError, match=says):
            parse_config({"mqtt": bad})


def test_one_device_is_handled_in_order_even_on_threads() -> None:
    """Readings of one device must reach the service in arrival order, however the groups
    fall: the replay guard would refuse (and strike) a reading overtaken by its successor."""
    sim = SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)), seed=7)
    name = format_address(sim.keys.address)
    seen: list[int] = []
    groups: list[int] = []
    acks: list[dict[str, Any]] = []
    readings = [sim.next_reading() for _ in range(40)]
    stop = asyncio.Event()

    class SlowService:
        address = bytes(20)

        def submit_checked(self, checked: list[CheckedReading]) -> list[Accepted]:
            time.sleep(random.random() / 200)  # a slow service: messages pile up meanwhile
            groups.append(len(checked))
            seen.extend(c.signed.reading.sequence for c in checked)
            return [Accepted(c.signed.reading_id) for c in checked]

    class Client:
        def __init__(self) -> None:
            self.messages = self._arrive()

        async def _arrive(self) -> AsyncIterator[aiomqtt.Message]:
            topic = readings_topic(PREFIX, name)
            for r in readings:
                await asyncio.sleep(random.random() / 1000)  # the broker's uneven arrivals
                yield aiomqtt.Message(topic, reading_to_json(r), 1, False, 1, None)
            await asyncio.Event().wait()  # the connection stays open

        async def publish(self, topic: str, payload: str, qos: int) -> None:
            acks.append(json.loads(payload))
            if len(acks) == len(readings):
                stop.set()

    ingest = MqttIngest(SlowService(), MqttConfig(max_inflight=8), threads=True)  # type: ignore[arg-type]

    async def run() -> None:
        await asyncio.wait_for(ingest._consume(Client(), stop), WAIT_S)  # type: ignore[arg-type]

    asyncio.run(run())
    assert seen == [r.reading.sequence for r in readings]
    assert [a["seq"] for a in acks] == seen and all(a["accepted"] for a in acks)
    assert max(groups) <= 8 and len(groups) < len(readings)  # grouped, and bounded
