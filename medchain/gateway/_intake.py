"""The stateless half of a reading's checks, worked out where there is CPU to spare.

What can be decided from the reading alone (parsing, its id and canonical encoding, the
Ed25519 signature, the vital-signs profile) is a pure function of its bytes: it is
computed here, in worker processes (`IntakeCheckers`), about 90 µs a reading. The
gateway's own process, one Python interpreter, then keeps only what must be decided in
one place and in arrival order (the device's record and state, the replay guard, the
rate limit, storage and batching: `GatewayService.submit_checked`), so its throughput
is no longer bound by one interpreter lock doing all of it.

A `CheckedReading` carries the outcomes, not decisions: the service still applies them
in its own order (an unknown device is refused before its signature is looked at, a
replay before its profile), exactly as if it had checked them itself.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from medchain.gateway._readings import (
    BadReading,
    SignedReading,
    each_or_refusal,
    reading_from_json,
    readings_from_json_array,
    verify_reading,
)
from medchain.gateway._vitals import (
    NonConformingReading,
    VitalSign,
    check_signed_time,
    validate_vital,
)
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway")
T = TypeVar("T")
MAX_INTAKE_WORKERS = 64


@dataclass(frozen=True)
class CheckedReading:
    """A parsed reading with the outcome of every check that needs no state. Its id,
    signed bytes and canonical encoding are computed (and travel with it)."""

    signed: SignedReading
    signature_error: BadReading | None
    """Why the signature does not verify with the reading's device key; None if it does."""
    vital: VitalSign | NonConformingReading
    """What the Observation says, or why it is outside the vital-signs profile."""


def check_reading(signed: SignedReading) -> CheckedReading:
    """Every stateless check of one reading; never raises."""
    signed.reading_id  # noqa: B018 - computed here, so the gateway's process need not
    signed.encoded  # noqa: B018
    try:
        verify_reading(signed)
        signature_error = None
    except BadReading as exc:
        signature_error = exc
    vital: VitalSign | NonConformingReading
    try:
        vital = validate_vital(signed.reading.observation, signed.reading.device)
        check_signed_time(vital, signed.reading.timestamp_ms)
    except BadReading as exc:
        vital = NonConformingReading(exc.message)
    return CheckedReading(signed, signature_error, vital)


def check_json(data: bytes) -> CheckedReading:
    """One reading in its JSON form; BadReading if it does not parse."""
    return check_reading(reading_from_json(data))


def check_json_array(data: bytes, max_readings: int) -> list[CheckedReading | BadReading]:
    """A hub's JSON array: one result per element (a BadReading for an element that does
    not parse); BadReading for the whole if it is not an array of at most `max_readings`."""
    return [
        item if isinstance(item, BadReading) else check_reading(item)
        for item in readings_from_json_array(data, max_readings)
    ]


def check_payloads(payloads: Sequence[bytes]) -> list[CheckedReading | BadReading]:
    """MQTT messages, one reading in JSON each: one result per payload."""
    return each_or_refusal(payloads, check_json)


def tune_collector() -> None:
    """Collect cyclic garbage less often, for a process that takes readings by the
    thousand. Each reading makes dozens of short-lived objects (parsed JSON,
    dataclasses) and no cycles; with Python's default thresholds (a young collection
    every 700 allocations, the older generations, which hold the tens of thousands of
    pending readings, walked every tenth) collecting took about 30 % of the gateway's
    CPU at 6,000 readings/s. Memory freed by reference counting is unaffected."""
    gc.freeze()  # what start-up made is never garbage: left out of every collection
    gc.set_threshold(100_000, 50, 100)


Check = tuple[Callable[..., Any], tuple[Any, ...]]
"""One request's checks: a function of this module and its arguments."""
_MAX_REQUESTS_PER_CALL = 256


def run_checks(checks: Sequence[Check]) -> list[tuple[bool, Any]]:
    """A worker's call: several requests' checks at once, so the lot crosses to the
    worker and back in one hand-off each way. Per request (True, result) or (False, the
    BadReading it raised)."""
    results: list[tuple[bool, Any]] = []
    for fn, args in checks:
        try:
            results.append((True, fn(*args)))
        except BadReading as exc:
            results.append((False, exc))
    return results


class IntakeCheckers:
    """Runs the checks above in `workers` processes, or with `workers=0` through `call`
    (the caller's thread pool, or inline: tests and in-process chains).

    Requests are not sent one by one: while every worker is busy, the requests arriving
    meanwhile queue up and go to the next free worker together (up to 256). Each
    hand-off to a worker and back costs the gateway's process a few thread switches,
    which under load (its interpreter lock busy with batching) take milliseconds each;
    per group, not per request, they stay a small share.

    A worker that dies (killed, out of memory) breaks the pool: the requests that met it
    are answered as unavailable (MedchainError) and a fresh pool serves the next ones."""

    def __init__(self, workers: int, call: Callable[..., Any] | None = None) -> None:
        if not 0 <= workers <= MAX_INTAKE_WORKERS:
            raise ValueError(f"intake workers must be 0 to {MAX_INTAKE_WORKERS}, not {workers}")
        self.workers = workers
        self._call = call
        self._pool: ProcessPoolExecutor | None = None
        self._queue: list[tuple[Check, asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._sending: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        """Start the workers now (each imports the checks once) rather than on the
        first reading."""
        if self.workers and self._pool is None:
            # spawn: a fresh interpreter, never a fork of this threaded process
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=tune_collector
            )
            for _ in range(self.workers):
                self._pool.submit(run_checks, [])

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    async def check_json(self, data: bytes) -> CheckedReading:
        """`check_json` in a worker."""
        result: CheckedReading = await self._run(check_json, data)
        return result

    async def check_json_array(
        self, data: bytes, max_readings: int
    ) -> list[CheckedReading | BadReading]:
        """`check_json_array` in a worker."""
        result: list[CheckedReading | BadReading] = await self._run(
            check_json_array, data, max_readings
        )
        return result

    async def check_payloads(self, payloads: Sequence[bytes]) -> list[CheckedReading | BadReading]:
        """`check_payloads` in a worker."""
        result: list[CheckedReading | BadReading] = await self._run(check_payloads, list(payloads))
        return result

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append(((fn, args), future))
        self._dispatch()
        return await future

    def _dispatch(self) -> None:
        while self._queue and self._in_flight < max(1, self.workers):
            group = self._queue[:_MAX_REQUESTS_PER_CALL]
            del self._queue[:_MAX_REQUESTS_PER_CALL]
            self._in_flight += 1
            task = asyncio.create_task(self._answer(group))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def _answer(self, group: list[tuple[Check, asyncio.Future[Any]]]) -> None:
        try:
            results = await self._send([check for check, _ in group])
        except Exception as exc:  # the pool broke: every request of the group hears it
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), (ok, value) in zip(group, results, strict=True):
                if future.done():
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        finally:
            self._in_flight -= 1
            self._dispatch()

    async def _send(self, checks: list[Check]) -> list[tuple[bool, Any]]:
        if not self.workers:
            if self._call is not None:
                result: list[tuple[bool, Any]] = await self._call(run_checks, checks)
                return result
            return run_checks(checks)
        self.start()
        assert self._pool is not None
        pool = self._pool
        try:
            return await asyncio.wrap_future(pool.submit(run_checks, checks))
        except BrokenProcessPool:
            log.warning("an intake worker died; starting a fresh pool")
            if self._pool is pool:
                self._pool = None
                pool.shutdown(wait=False, cancel_futures=True)
            raise MedchainError(
                "an intake worker of the gateway stopped while checking these readings"
            ) from None


__all__ = [
    "MAX_INTAKE_WORKERS",
    "CheckedReading",
    "IntakeCheckers",
    "check_json",
    "check_json_array",
    "check_payloads",
    "check_reading",
    "run_checks",
    "tune_collector",
]
