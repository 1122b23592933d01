"""The gateway's MQTT face: devices publish signed readings to a broker (Mosquitto), the
gateway subscribes and answers each one.

    <prefix>/<device address>/readings   device -> gateway, QoS 1, the JSON form of HTTP
    <prefix>/<device address>/acks       gateway -> device, QoS 1, one answer per reading

Every reading goes through the same pipeline as an HTTP one (its stateless checks in the
gateway's intake workers, then `GatewayService.submit_checked`), so checks,
strikes, the replay guard and batches are shared; this module only adds the topic rule (a
device publishes on its own topic) and the transport. Batches are flushed by whoever runs
the service (the HTTP server's flush loop), not here.

Messages are taken from the broker into a bounded queue and answered in groups: each
group (whatever arrived while the previous one was processed, up to `max_inflight`) goes
through `GatewayService.submit_checked` in arrival order and is stored in one transaction
before its acks go out. One group at a time keeps a device's readings in order (the
replay guard refuses a sequence number below the last accepted one, and would strike a
device whose readings merely overtook each other); the group commit is what lets one
gateway take thousands of readings a second. The session is persistent (fixed client
id, clean_session off), so readings sent while the gateway reconnects wait at the
broker; a lost ack is repaired by the device's resend, which the service acknowledges
again as a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import aiomqtt

from medchain.crypto import address_from_public_key, format_address
from medchain.gateway._config import GatewayConfig, MqttConfig
from medchain.gateway._intake import CheckedReading, IntakeCheckers
from medchain.gateway._readings import BadReading, SignedReading
from medchain.gateway._service import GatewayService
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway.mqtt")
T = TypeVar("T")

READINGS = "readings"
ACKS = "acks"
RECONNECT_MIN_S = 0.5


def readings_topic(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/{READINGS}"


def acks_topic(prefix: str, device: str) -> str:
    return f"{prefix}/{device}/{ACKS}"


def _refusal(
    code: str, status: int, message: str, signed: SignedReading | None = None
) -> dict[str, Any]:
    answer: dict[str, Any] = {"accepted": False, "status": status, "error": code}
    answer["message"] = message
    if signed is not None:
        answer |= {"id": signed.reading_id.hex(), "seq": signed.reading.sequence}
    return answer


def _unavailable(count: int, exc: MedchainError) -> dict[str, Any]:
    log.warning("mqtt: %d readings not processed: %s", count, exc.message)
    return _refusal(
        "unavailable",
        503,
        f"the gateway cannot process readings now: {exc.message}; resend later",
    )


class MqttIngest:
    """Subscribes to every device's readings topic and answers on its acks topic.

    `threads=False` runs the pipeline on the loop thread, for a backend bound to one
    thread (an in-process LocalChain's SQLite store), as `create_gateway_app` does."""

    def __init__(
        self,
        service: GatewayService,
        config: MqttConfig,
        *,
        threads: bool = True,
        reconnect_min_s: float = RECONNECT_MIN_S,
        checkers: IntakeCheckers | None = None,
    ) -> None:
        """`checkers`: where readings' stateless checks run (the gateway's intake
        workers); without, in the pipeline's thread."""
        self.service = service
        self.config = config
        self.prefix = config.topic_prefix
        self.client_id = config.client_id or f"medchain-gateway-{format_address(service.address)}"
        self.connected = asyncio.Event()
        """Set while subscribed to the broker (for health checks and tests)."""
        self.connections = 0
        """Successful connections so far: above 1 means the ingest has reconnected."""
        self._threads = threads
        self._reconnect_min_s = reconnect_min_s
        self._checkers = checkers if checkers is not None else IntakeCheckers(0, self._call)

    def _client(self) -> aiomqtt.Client:
        c = self.config
        tls = (
            aiomqtt.TLSParameters(ca_certs=c.ca_file, certfile=c.cert_file, keyfile=c.key_file)
            if c.tls
            else None
        )
        return aiomqtt.Client(
            c.host,
            c.port,
            username=c.username,
            password=c.password,
            identifier=self.client_id,
            clean_session=False,
            tls_params=tls,
            max_queued_incoming_messages=c.max_queued,
            timeout=10,
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set (or the task is cancelled), reconnecting with
        exponential backoff whenever the broker is unreachable or drops the connection."""
        backoff = self._reconnect_min_s
        where = f"{self.config.host}:{self.config.port}"
        while not stop.is_set():
            try:
                async with self._client() as client:
                    await client.subscribe(readings_topic(self.prefix, "+"), qos=1)
                    if stop.is_set():  # the gateway stopped (or never served) meanwhile
                        break
                    self.connections += 1
                    self.connected.set()
                    backoff = self._reconnect_min_s
                    log.info(
                        "mqtt: subscribed to %s on %s", readings_topic(self.prefix, "+"), where
                    )
                    await self._consume(client, stop)
            except aiomqtt.MqttError as exc:
                log.warning(
                    "mqtt: broker %s unavailable (%s); retrying in %.1f s", where, exc, backoff
                )
            finally:
                self.connected.clear()
            if stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(backoff * 2, self.config.reconnect_max_ms / 1000)

    async def _consume(self, client: aiomqtt.Client, stop: asyncio.Event) -> None:
        queue: asyncio.Queue[aiomqtt.Message] = asyncio.Queue(self.config.max_inflight)
        reader = asyncio.create_task(self._read(client, queue))
        stopped = asyncio.create_task(stop.wait())
        try:
            while True:
                getter = asyncio.create_task(queue.get())
                await asyncio.wait({getter, reader, stopped}, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    if reader.done():
                        reader.result()  # MqttError when the connection dropped
                    return
                group = [getter.result()]
                while len(group) < self.config.max_inflight and not queue.empty():
                    group.append(queue.get_nowait())
                await self.answer_group(client, group)
        finally:
            reader.cancel()
            stopped.cancel()
            taken = [queue.get_nowait() for _ in range(queue.qsize())]
            if taken:  # the broker considers them delivered: store and answer them now
                await self.answer_group(client, taken)

    async def _read(self, client: aiomqtt.Client, queue: asyncio.Queue[aiomqtt.Message]) -> None:
        async for message in client.messages:
            await queue.put(message)  # waits while the queue is full: bounded work

    async def answer_group(self, client: aiomqtt.Client, messages: list[aiomqtt.Message]) -> None:
        """Answer a group of messages in arrival order, each on its device's acks topic."""
        devices: list[str | None] = []
        answers: list[dict[str, Any] | None] = []
        payloads: list[tuple[int, bytes]] = []
        for message in messages:
            device, refusal = self._topic(message)
            if device is not None and refusal is None:
                payloads.append((len(answers), bytes(message.payload)))
            devices.append(device)
            answers.append(refusal)
        checked = await self._check([p for _, p in payloads]) if payloads else []
        to_submit: list[tuple[int, CheckedReading]] = []
        for (i, _), result in zip(payloads, checked, strict=True):
            device = devices[i]
            assert device is not None
            refusal = result if isinstance(result, dict) else self._refuse_early(device, result)
            if refusal is None:
                assert isinstance(result, CheckedReading)
                to_submit.append((i, result))
            else:
                answers[i] = refusal
        submitted = await self._submit([c for _, c in to_submit]) if to_submit else []
        for (i, _), answer in zip(to_submit, submitted, strict=True):
            answers[i] = answer
        await asyncio.gather(
            *(
                self._publish(client, device, answer)
                for device, answer in zip(devices, answers, strict=True)
                if device is not None and answer is not None
            )
        )

    def _topic(self, message: aiomqtt.Message) -> tuple[str | None, dict[str, Any] | None]:
        """(device, refusal to send, or None to check the payload); device None: a
        message not on a readings topic, left unanswered."""
        topic = message.topic.value
        head, tail = f"{self.prefix}/", f"/{READINGS}"
        device = topic[len(head) : -len(tail)]
        if not (topic.startswith(head) and topic.endswith(tail)) or not device or "/" in device:
            log.warning("mqtt: ignoring a message on %s, not a readings topic", topic)
            return None, None  # e.g. a subscription left in the persistent session
        if not isinstance(message.payload, bytes | bytearray):
            return device, _refusal("malformed", 400, "the payload must be a reading in JSON")
        return device, None

    def _refuse_early(
        self, device: str, result: CheckedReading | BadReading
    ) -> dict[str, Any] | None:
        """The refusal of a payload that does not parse or was published on another
        device's topic; None if it goes on to the pipeline."""
        if isinstance(result, BadReading):
            return _refusal(result.code, 400, result.message)
        signed = result.signed
        signer = format_address(address_from_public_key(signed.reading.device))
        if signer != device:
            return _refusal(
                "wrong_topic",
                403,
                f"a reading signed by device {signer} was published on the topic of {device}; "
                f"a device publishes on its own topic, {readings_topic(self.prefix, signer)}",
                signed,
            )
        return None

    async def _check(
        self, payloads: list[bytes]
    ) -> list[CheckedReading | BadReading] | list[dict[str, Any]]:
        """The payloads' stateless checks, or each one's 503 if they could not be made."""
        try:
            return await self._checkers.check_payloads(payloads)
        except MedchainError as exc:  # a worker died: the devices resend
            return [_unavailable(len(payloads), exc)] * len(payloads)

    async def _submit(self, checked: list[CheckedReading]) -> list[dict[str, Any]]:
        try:
            results = await self._call(self.service.submit_checked, checked)
        except MedchainError as exc:  # e.g. the node is unreachable: not the devices' fault
            refusal = _unavailable(len(checked), exc)
            return [
                refusal | {"id": c.signed.reading_id.hex(), "seq": c.signed.reading.sequence}
                for c in checked
            ]
        return [
            result.answer() | {"id": c.signed.reading_id.hex(), "seq": c.signed.reading.sequence}
            for c, result in zip(checked, results, strict=True)
        ]

    async def _publish(self, client: aiomqtt.Client, device: str, answer: dict[str, Any]) -> None:
        try:
            await client.publish(acks_topic(self.prefix, device), json.dumps(answer), qos=1)
        except aiomqtt.MqttError as exc:  # the device resends and is acknowledged again
            log.info("mqtt: ack to %s lost: %s", device, exc)

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args) if self._threads else fn(*args)


def start_mqtt(
    service: GatewayService,
    config: GatewayConfig,
    stop: asyncio.Event | None = None,
    *,
    threads: bool = True,
    checkers: IntakeCheckers | None = None,
) -> asyncio.Task[None] | None:
    """Start MQTT intake beside the HTTP server (on the running loop); None when the
    config has no `mqtt` section. Stop it by setting `stop` or cancelling the task."""
    if config.mqtt is None:
        return None
    ingest = MqttIngest(service, config.mqtt, threads=threads, checkers=checkers)
    return asyncio.create_task(ingest.run(stop or asyncio.Event()), name="medchain-gateway-mqtt")


__all__ = ["MqttIngest", "acks_topic", "readings_topic", "start_mqtt"]
