"""Streaming a simulated fleet's readings to a gateway, over HTTP or MQTT, at a rate per
device, and collecting what the gateway answered (what the fleet then is on chain:
`_fleet_report`).

A device's readings stay in order (the gateway's replay guard refuses, and strikes, a
sequence number below the last one it accepted): over HTTP each waits for its response
before the next is posted; over MQTT a tick's readings are published in order on the
device's one connection, and the next tick waits for all their acks. Different devices
send concurrently, each at its own pace.

Over HTTP a device whose connection fails before the answer (reset, closed, refused, timed
out) sends the reading again, a few times with growing waits (`medchain.gateway._resend`):
the gateway answers a reading it already took as a duplicate, so nothing is lost or struck.

Misbehaving devices never give up: a restricted one keeps sending at its rate and is
refused with `device_restricted` (not struck: the gateway refuses it before looking at
the reading); once the restriction lapses it misbehaves again, is struck again, and the
chain's rule restricts it again or bans it (a strike while restricted, or the
`device_strikes_ban`th strike).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import math
import secrets
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiomqtt
import httpx

from medchain.crypto import format_address
from medchain.gateway._config import MqttConfig
from medchain.gateway._mqtt import acks_topic, readings_topic
from medchain.gateway._readings import SignedReading, reading_to_json
from medchain.gateway._remote import GatewayUnavailable
from medchain.gateway._resend import resending
from medchain.gateway._simulate import MisbehavingDevice, Misbehaviour, SimulatedDevice
from medchain.types import MedchainError

FLOOD_BURST = 40
"""Readings a flooding device sends per tick: twice the default burst."""
DEFAULT_TOPIC_PREFIX = MqttConfig().topic_prefix
DEVICES_PER_CONNECTION = 250
"""MQTT: devices sharing one broker connection (until MAX_CONNECTIONS are open)."""
MAX_CONNECTIONS = 16
"""MQTT: the most broker connections one simulation opens."""
ACK_TIMEOUT_S = 10.0
"""MQTT: how long a device waits for the gateway's ack before counting `no_ack`."""
_SUBSCRIBE_CHUNK = 100
"""Ack topics per SUBSCRIBE packet."""


class Transport(enum.StrEnum):
    HTTP = "http"
    MQTT = "mqtt"


class ProgressBar(Protocol):
    """Where a long run reports how far it got (rich's `Progress` is one)."""

    def add_task(self, description: str, *, total: float | None) -> Any: ...

    def advance(self, task_id: Any) -> None: ...


@dataclass
class FleetRun:
    """What a simulation sent and what the gateway answered."""

    accepted: dict[bytes, list[bytes]] = field(default_factory=dict)
    """Device address -> ids of its readings the gateway accepted (resends included)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Refusals by error code; `unreachable` (no answer from the gateway or the broker)
    and, over MQTT, `no_ack` (no ack within the wait) included."""
    refusals: dict[bytes, Counter[str]] = field(default_factory=dict)
    """Device address -> its refusals by error code."""
    unreachable: Counter[str] = field(default_factory=Counter)
    """Over HTTP, what the `unreachable` readings met the last time they were sent, by
    kind of error (e.g. `ReadTimeout`, `RemoteProtocolError: Server disconnected ...`)."""
    resent: Counter[str] = field(default_factory=Counter)
    """Over HTTP, readings sent again because their connection failed, by what it met
    (each resend counted); they end up answered, or `unreachable`."""
    sent: int = 0
    elapsed_s: float = 0.0

    @property
    def accepted_count(self) -> int:
        return sum(len(ids) for ids in self.accepted.values())

    def accepted_ids(self) -> list[bytes]:
        """Every accepted reading's id, once: a replayed reading acknowledged as a
        duplicate is listed once."""
        return list(dict.fromkeys(rid for rids in self.accepted.values() for rid in rids))

    def _accept(self, device: bytes, reading_id: bytes) -> None:
        self.accepted.setdefault(device, []).append(reading_id)

    def _refuse(self, device: bytes, code: str) -> None:
        self.refused[code] += 1
        self.refusals.setdefault(device, Counter())[code] += 1


@dataclass(frozen=True)
class MqttTarget:
    """The broker a simulated fleet publishes to, as a gateway with an `mqtt` section
    subscribes to it."""

    host: str = "127.0.0.1"
    port: int = 1883
    topic_prefix: str = DEFAULT_TOPIC_PREFIX
    connections: int | None = None
    """Broker connections to share the fleet over; None: one per DEVICES_PER_CONNECTION
    devices, at most MAX_CONNECTIONS."""
    ack_timeout_s: float = ACK_TIMEOUT_S

    def pool_size(self, devices: int) -> int:
        wanted = self.connections or min(MAX_CONNECTIONS, -(-devices // DEVICES_PER_CONNECTION))
        return max(1, min(wanted, devices))


def parse_broker(text: str) -> tuple[str, int]:
    """`HOST:PORT` (or `HOST`, port 1883; `[::1]:1883` for IPv6) as (host, port)."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or text.strip().endswith("]") or (host.count(":") and not host.startswith("[")):
        host, port_text = text.strip(), "1883"  # no port, or a bare IPv6 address
    host = host.strip("[]")
    if not host or not port_text.isdigit() or not 1 <= int(port_text) <= 65_535:
        raise MedchainError(f"--broker {text!r}: expected HOST:PORT, e.g. 127.0.0.1:1883")
    return host, int(port_text)


def check_topic_prefix(prefix: str) -> str:
    """A gateway's MQTT topic prefix as devices publish under it (no trailing /)."""
    if not prefix or "+" in prefix or "#" in prefix or prefix.startswith("/"):
        raise MedchainError(
            f"--topic-prefix {prefix!r}: give the gateway's prefix, e.g. {DEFAULT_TOPIC_PREFIX} "
            "(no wildcards, no leading /)"
        )
    return prefix.rstrip("/")


def mqtt_target(transport: Transport, broker: str | None, topic_prefix: str) -> MqttTarget | None:
    """The broker to publish to (`--broker`, default 127.0.0.1:1883) with the gateway's
    `topic_prefix`, or None over HTTP, where neither may be given."""
    if transport is Transport.MQTT:
        host, port = parse_broker(broker or "127.0.0.1:1883")
        return MqttTarget(host, port, check_topic_prefix(topic_prefix))
    if broker is not None or topic_prefix != DEFAULT_TOPIC_PREFIX:
        raise MedchainError("--broker and --topic-prefix go with --transport mqtt")
    return None


_Answer = tuple[bytes | None, str]
"""(reading id, "") when accepted, (None, error code) when refused."""
_Send = Callable[[SimulatedDevice, Sequence[SignedReading]], Awaitable[list[_Answer]]]
"""Send one device's readings in order; their answers, in the same order."""


async def stream_fleet(
    gateway: str,
    devices: Sequence[SimulatedDevice],
    *,
    rate_per_minute: float,
    duration_s: float | None = None,
    readings: int | None = None,
    concurrency: int = 64,
    progress: ProgressBar | None = None,
    mqtt: MqttTarget | None = None,
) -> FleetRun:
    """Every device sends a reading every 60/rate s (a flooding one, FLOOD_BURST at once)
    until `duration_s` or `readings` per device: over HTTP to `gateway`, or with `mqtt`
    published to that broker. Each device keeps its own pace (the fleet's start times are
    spread over one interval, and a slow device does not hold up the others); a device's
    readings of one tick are all answered before its next tick, so they arrive in order.
    At most `concurrency` devices have readings in flight."""
    if duration_s is None and readings is None:
        raise MedchainError("give a duration or a reading count, so the simulation ends")
    interval = 60.0 / rate_per_minute
    ticks = readings if readings is not None else max(1, int((duration_s or 0) / interval))
    if duration_s is not None:
        ticks = min(ticks, max(1, int(duration_s / interval)))
    run = FleetRun()
    semaphore = asyncio.Semaphore(concurrency)
    task = progress.add_task("readings", total=ticks * len(devices)) if progress else None

    async def device_run(send: _Send, device: SimulatedDevice, start: float) -> None:
        burst = (
            FLOOD_BURST
            if isinstance(device, MisbehavingDevice) and device.mode is Misbehaviour.FLOOD
            else 1
        )
        address = device.keys.address
        # readings carry the time they are taken: the device's clock follows its pace
        device.interval_ms = round(interval * 1000)
        wait_ms = round(max(0.0, start - time.monotonic()) * 1000)
        device.now_ms = time.time_ns() // 1_000_000 + wait_ms
        # A simulated device keeps no counter between runs, so its sequence numbers go on
        # from its start time in ms: above every earlier run's (one reading a ms at most),
        # so a rerun of the same fleet is not refused, and struck, as a replay.
        device.next_sequence = max(device.next_sequence, device.now_ms)
        for n in range(ticks):
            pause = start + n * interval - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            async with semaphore:
                signed = [device.next_reading() for _ in range(burst)]
                run.sent += burst
                for reading_id, code in await send(device, signed):
                    if reading_id is not None:
                        run._accept(address, reading_id)
                    else:
                        run._refuse(address, code)
            if progress is not None and task is not None:
                progress.advance(task)

    sender = (
        _http_sender(gateway, concurrency, run)
        if mqtt is None
        else _mqtt_sender(mqtt, devices, concurrency)
    )
    async with sender as send:
        started = time.monotonic()
        spread = interval / max(1, len(devices))
        await asyncio.gather(
            *(device_run(send, d, started + i * spread) for i, d in enumerate(devices))
        )
        run.elapsed_s = time.monotonic() - started
    return run


# -- HTTP -------------------------------------------------------------------------------


def _error_kind(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:120].rstrip(": ")


def _connection_lost(exc: BaseException) -> bool:
    """The request met a failed connection instead of an answer: send it again."""
    return isinstance(exc, httpx.NetworkError | httpx.TimeoutException | httpx.RemoteProtocolError)


@contextlib.asynccontextmanager
async def _http_sender(gateway: str, concurrency: int, run: FleetRun) -> AsyncIterator[_Send]:
    # idle connections are dropped before the gateway's keep-alive (5 s) closes them, so
    # few requests meet a connection closing under them; those few are resent
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=2.0
    )
    async with httpx.AsyncClient(base_url=gateway, timeout=30.0, limits=limits) as http:

        def resent(exc: BaseException) -> None:
            run.resent[_error_kind(exc)] += 1

        async def post(signed: SignedReading) -> _Answer:
            body = reading_to_json(signed)
            try:
                async for attempt in resending(_connection_lost, on_resend=resent):
                    with attempt:
                        response = await http.post("/v1/readings", content=body)
            except httpx.HTTPError as exc:
                run.unreachable[_error_kind(exc)] += 1
                return None, "unreachable"
            if response.status_code == 202:
                return bytes.fromhex(response.json()["id"]), ""
            try:
                return None, str(response.json().get("error", response.status_code))
            except ValueError:
                return None, str(response.status_code)

        async def send(device: SimulatedDevice, readings: Sequence[SignedReading]) -> list[_Answer]:
            return [await post(signed) for signed in readings]  # one by one: in order

        yield send


# -- MQTT -------------------------------------------------------------------------------


class _MqttShard:
    """One broker connection carrying the readings of a share of the fleet, subscribed to
    exactly those devices' ack topics. An ack is matched by its topic (the device) and the
    reading id it names to the reading waiting for it."""

    def __init__(self, client: aiomqtt.Client, prefix: str, ack_timeout_s: float) -> None:
        self.client = client
        self.prefix = prefix
        self.ack_timeout_s = ack_timeout_s
        self.lost: str | None = None
        self._waiting: dict[str, list[tuple[str, asyncio.Future[dict[str, Any]]]]] = {}
        """Device -> (reading id, its ack to come), in the order sent."""

    async def subscribe(self, names: Sequence[str]) -> None:
        for start in range(0, len(names), _SUBSCRIBE_CHUNK):
            chunk = names[start : start + _SUBSCRIBE_CHUNK]
            await self.client.subscribe([(acks_topic(self.prefix, n), 1) for n in chunk])

    async def read_acks(self) -> None:
        try:
            async for message in self.client.messages:
                self._match(message)
        except aiomqtt.MqttError as exc:
            self.lost = str(exc)
            for waiting in self._waiting.values():
                for _, waiter in waiting:
                    if not waiter.done():
                        waiter.set_result({"accepted": False, "error": "unreachable"})

    def _match(self, message: aiomqtt.Message) -> None:
        head, tail = f"{self.prefix}/", "/acks"
        topic = message.topic.value
        waiting = self._waiting.get(topic[len(head) : -len(tail)])
        if not waiting or not isinstance(message.payload, bytes | bytearray):
            return  # e.g. the late ack of a reading counted as no_ack
        try:
            ack = json.loads(message.payload)
        except ValueError:
            return
        if not isinstance(ack, dict):
            return
        for reading_id, waiter in waiting:  # an ack without an id answers the oldest
            if not waiter.done() and ack.get("id", reading_id) == reading_id:
                waiter.set_result(ack)
                return

    async def send(self, name: str, readings: Sequence[SignedReading]) -> list[_Answer]:
        """Publish a device's readings in order, then wait (bounded) for their acks."""
        if self.lost is not None:
            return [(None, "unreachable")] * len(readings)
        loop = asyncio.get_running_loop()
        mine = [(s.reading_id.hex(), loop.create_future()) for s in readings]
        waiting = self._waiting.setdefault(name, [])
        waiting.extend(mine)  # before the first ack can come
        missing = "no_ack"
        try:
            async with asyncio.timeout(self.ack_timeout_s):
                topic = readings_topic(self.prefix, name)
                for signed in readings:  # the PUBACK comes from the broker: quick
                    await self.client.publish(
                        topic, reading_to_json(signed), qos=1, timeout=math.inf
                    )
                await asyncio.wait([waiter for _, waiter in mine])  # never cancels them
        except TimeoutError:
            pass
        except aiomqtt.MqttError:
            missing = "unreachable"
        finally:
            waiting[:] = [w for w in waiting if w not in mine]
            if not waiting:
                del self._waiting[name]
        return [
            _answer(w.result()) if w.done() and not w.cancelled() else (None, missing)
            for _, w in mine
        ]


def _answer(ack: dict[str, Any]) -> _Answer:
    if ack.get("accepted") is True and isinstance(ack.get("id"), str):
        return bytes.fromhex(ack["id"]), ""
    return None, str(ack.get("error", "refused"))


@contextlib.asynccontextmanager
async def _mqtt_sender(
    target: MqttTarget, devices: Sequence[SimulatedDevice], concurrency: int
) -> AsyncIterator[_Send]:
    """Devices are sharded over a bounded pool of broker connections (device i on
    connection i mod n) rather than one connection each: a connection is a socket, a
    TCP and MQTT handshake, a broker session and a keep-alive ping, and thousands of them
    would exhaust the file-descriptor limit (1,024 by default) and load the broker with
    sessions no real deployment would put behind one host. A few connections, each
    subscribed to its own devices' ack topics, still spread the work over the broker and
    keep one slow socket from stalling the whole fleet. A device's readings stay in order:
    they are published in order on one connection (MQTT keeps the order of one client's
    messages on a topic) and its next tick waits for their acks."""
    size = target.pool_size(len(devices))
    where = f"{target.host}:{target.port}"
    run_id = secrets.token_hex(4)
    async with contextlib.AsyncExitStack() as stack:
        shards = []
        for i in range(size):
            client = aiomqtt.Client(
                target.host, target.port, identifier=f"medchain-sim-{run_id}-{i}", timeout=10
            )
            # publishes waiting for their PUBACK: up to a burst per device in flight
            client.pending_calls_threshold = max(10, concurrency * FLOOD_BURST)
            try:
                await stack.enter_async_context(client)
            except aiomqtt.MqttError as exc:
                raise GatewayUnavailable(
                    f"cannot connect to the MQTT broker at {where} ({exc}); is it running, "
                    "and is it the one in the gateway's config? (check --broker)"
                ) from None
            shards.append(_MqttShard(client, target.topic_prefix, target.ack_timeout_s))
        names = {d.keys.address: format_address(d.keys.address) for d in devices}
        shard_of = {d.keys.address: shards[i % size] for i, d in enumerate(devices)}
        for i, shard in enumerate(shards):
            await shard.subscribe([names[d.keys.address] for d in devices[i::size]])
        readers = [asyncio.create_task(s.read_acks()) for s in shards]

        async def send(device: SimulatedDevice, readings: Sequence[SignedReading]) -> list[_Answer]:
            address = device.keys.address
            return await shard_of[address].send(names[address], readings)

        try:
            yield send
        finally:
            for reader in readers:
                reader.cancel()
            await asyncio.gather(*readers, return_exceptions=True)


# -- after the run ----------------------------------------------------------------------


def wait_committed(gateway: str, timeout_s: float = 60.0) -> None:
    """Until the gateway holds no pending reading (its strikes go out with the batch)."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=gateway, timeout=5.0) as http:
        while time.monotonic() < deadline:
            if http.get("/v1/health").json().get("pending") == 0:
                time.sleep(1.5)  # the last window's strikes and batch reach the chain
                if http.get("/v1/health").json().get("pending") == 0:
                    return
            time.sleep(0.3)
    raise GatewayUnavailable(
        f"the gateway at {gateway} still holds pending readings after {timeout_s:g} s; "
        "is its node reachable? (see its log)"
    )


__all__ = [
    "ACK_TIMEOUT_S",
    "DEFAULT_TOPIC_PREFIX",
    "FLOOD_BURST",
    "FleetRun",
    "MqttTarget",
    "ProgressBar",
    "Transport",
    "check_topic_prefix",
    "mqtt_target",
    "parse_broker",
    "stream_fleet",
    "wait_committed",
]
