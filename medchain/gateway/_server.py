"""The gateway's HTTP face: devices POST signed readings, ask for their status and proof;
patients read the gateway's disclosure log as they read a node's.

A request's readings are parsed and checked in the gateway's intake workers
(medchain.gateway._intake), then decided on by the synchronous pipeline
(GatewayService.submit_checked) in a worker thread, so a chain lookup never stalls the
loop. The loop drives the service: one background task flushes batches when due (the
next batch prepared while the previous commits), another keeps device records and
readers' lists fresh, so neither intake nor a batch waits for the node to answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medchain.api import install_route_error_handlers
from medchain.app import ReadNotAllowed
from medchain.crypto import format_address
from medchain.gateway._disclosure_routes import disclosure_routes
from medchain.gateway._intake import CheckedReading, IntakeCheckers
from medchain.gateway._memory import UPKEEP_PERIOD_S, memory_upkeep
from medchain.gateway._read_requests import ReadRefused, status_body, verified_read
from medchain.gateway._readings import BadReading
from medchain.gateway._service import Accepted, GatewayService, Prepared, ReadingRefused
from medchain.node import HeadCommitter
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway")
T = TypeVar("T")
Answer = Accepted | ReadingRefused
Checked = CheckedReading | BadReading


def _error(
    status: int,
    code: str,
    message: str,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    if retry_after:
        headers = (headers or {}) | {"Retry-After": str(max(1, round(retry_after)))}
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _unavailable(exc: MedchainError) -> JSONResponse:
    log.warning("readings not processed: %s", exc.message)
    return _error(
        503, "unavailable", f"the gateway cannot process readings now: {exc.message}; resend later"
    )


Call = Callable[..., Awaitable[Any]]
"""Runs one of the service's blocking steps: in a worker thread, or inline on the loop
for a backend bound to one thread (an in-process LocalChain's SQLite store)."""


def make_call(threads: bool) -> Call:
    async def call(fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, *args) if threads else fn(*args)

    return call


async def _commit_heads(heads: HeadCommitter | None) -> None:
    """The disclosure log's head, when due: between the gateway's other transactions,
    never beside them (one account, one nonce at a time)."""
    if heads is not None:
        await heads.tick(time.monotonic())


async def flush_batches(
    service: GatewayService, call: Call, heads: HeadCommitter | None = None
) -> list[bytes]:
    """`service.flush`, with the next batch prepared (sealed, stored) while the previous
    one commits; inline calls make it `flush` exactly. `heads`: the disclosure log's
    head is committed between batches when due, so steady load never holds it back."""
    await call(service.report_strikes)
    batch_ids: list[bytes] = []
    prepared: Prepared | None = await call(service.prepare)
    while prepared is not None:
        following = asyncio.ensure_future(call(service.prepare))
        try:
            batch_ids.append(await call(service.commit, prepared))
            await call(service.report_strikes)
            await _commit_heads(heads)
        except BaseException:
            with contextlib.suppress(Exception):  # let it end, and put its readings back
                later = await following
                if later is not None:
                    await call(service.release, later.batch.entries)
            raise
        prepared = await following
    return batch_ids


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def flush_loop(
    service: GatewayService,
    call: Call,
    stop: asyncio.Event,
    poll_s: float = 0.05,
    heads: HeadCommitter | None = None,
) -> None:
    """Commit batches when due, and the disclosure log's head (`heads`) every its
    interval while it has new entries, until `stop` is set (a flush under way ends
    first); a failed flush is logged and retried on the next poll."""
    while not stop.is_set():
        if service.due():
            try:
                await flush_batches(service, call, heads)
            except MedchainError as exc:
                log.warning("batch not committed, retrying: %s", exc.message)
                await _pause(stop, 1)
        await _commit_heads(heads)
        await _pause(stop, poll_s)


async def refresh_loop(
    service: GatewayService, call: Call, stop: asyncio.Event, period_s: float = 0.25
) -> None:
    """Keep device records and readers' lists fresh (`service.refresh`) until `stop`."""
    while not stop.is_set():
        try:
            await call(service.refresh)
        except MedchainError as exc:
            log.warning("device records or readers not refreshed: %s", exc.message)
        await _pause(stop, period_s)


async def upkeep_loop(call: Call, stop: asyncio.Event, period_s: float = UPKEEP_PERIOD_S) -> None:
    """Collect garbage and hand freed memory back to the system every `period_s`
    (see medchain.gateway._memory), until `stop`."""
    while True:
        await _pause(stop, period_s)
        if stop.is_set():
            return
        await call(memory_upkeep)


class GroupedIntake:
    """Concurrent requests' readings are decided on together: while one group is decided
    and stored (in a worker thread), the readings of requests arriving meanwhile wait
    and form the next group. Requests keep their arrival order, however long their
    stateless checks take (several intake workers may finish them out of order), and one
    `submit_checked` at a time keeps readings in that order; the fewer, larger groups
    cost fewer thread hand-offs, SQLite commits and device lookups than one per request."""

    def __init__(self, service: GatewayService, call: Callable[..., Any]) -> None:
        self._service = service
        self._call = call
        self._queue: list[tuple[asyncio.Future[list[Checked]], asyncio.Future[list[Answer]]]] = []
        self._leader: asyncio.Task[None] | None = None

    async def submit(self, checking: asyncio.Future[list[Checked]]) -> list[Answer]:
        """The answers to the checked readings `checking` yields (its BadReadings left
        out), or the exception it raised."""
        future: asyncio.Future[list[Answer]] = asyncio.get_running_loop().create_future()
        self._queue.append((checking, future))
        if self._leader is None:
            self._leader = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            while self._queue:
                groups, self._queue = self._queue, []
                ready: list[tuple[list[CheckedReading], asyncio.Future[list[Answer]]]] = []
                for checking, future in groups:
                    await asyncio.wait({checking})
                    error = None if checking.cancelled() else checking.exception()
                    if checking.cancelled() or error is not None:
                        if not future.done():
                            future.set_exception(error or MedchainError("the check was cancelled"))
                        continue
                    checked = [c for c in checking.result() if isinstance(c, CheckedReading)]
                    ready.append((checked, future))
                flat = [c for checked, _ in ready for c in checked]
                try:
                    answers: list[Answer] = (
                        await self._call(self._service.submit_checked, flat) if flat else []
                    )
                except Exception as exc:  # e.g. the node is unreachable: every request hears
                    for _, future in ready:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                start = 0
                for checked, future in ready:
                    if not future.done():
                        future.set_result(answers[start : start + len(checked)])
                    start += len(checked)
        finally:
            self._leader = None


@dataclass(frozen=True)
class _Gateway:
    """What the routes use, kept in the app's state."""

    service: GatewayService
    intake: GroupedIntake
    checks: IntakeCheckers
    call: Call


def create_gateway_app(
    service: GatewayService,
    *,
    background: bool = True,
    threads: bool = True,
    checkers: IntakeCheckers | None = None,
    heads: HeadCommitter | None = None,
) -> FastAPI:
    """`background=False` leaves flushing to the caller (tests call `service.flush`);
    `threads=False` runs the pipeline on the loop thread, for a backend bound to one
    thread (an in-process LocalChain's SQLite store). `checkers`: where readings' stateless
    checks run (the gateway's intake workers); without, in the pipeline's thread.
    `heads`: commits the disclosure log's head from the background flush loop."""
    call = make_call(threads)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        stop = asyncio.Event()
        tasks = (
            [
                asyncio.create_task(flush_loop(service, call, stop, heads=heads)),
                asyncio.create_task(refresh_loop(service, call, stop)),
                asyncio.create_task(upkeep_loop(call, stop)),
            ]
            if background
            else []
        )
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks, return_exceptions=True)
            if service.pending_count:
                await flush_batches(service, call)  # nothing accepted is left behind

    app = FastAPI(title="medchain gateway", lifespan=lifespan)
    checks = checkers if checkers is not None else IntakeCheckers(0, call)
    app.state.gateway = _Gateway(service, GroupedIntake(service, call), checks, call)
    app.get("/v1/health")(_health)
    app.post("/v1/readings", response_model=None)(_post_readings)
    app.get("/v1/readings/{reading_id}", response_model=None)(_get_reading)
    app.include_router(disclosure_routes())
    install_route_error_handlers(app)
    return app


async def _health(request: Request) -> dict[str, Any]:
    service = request.app.state.gateway.service
    return {
        "ok": True,
        "gateway": format_address(service.address),
        "pending": service.pending_count,
    }


async def _post_readings(request: Request) -> JSONResponse:
    """One reading (a JSON object), or an array of them from a hub relaying several
    devices: the array's readings are checked in order and persisted together."""
    gateway: _Gateway = request.app.state.gateway
    limit = gateway.service.config.max_readings_per_request
    body = await request.body()
    single = not body.lstrip().startswith(b"[")

    async def check() -> list[Checked]:
        if single:
            return [await gateway.checks.check_json(body)]
        return await gateway.checks.check_json_array(body, limit)

    checking = asyncio.ensure_future(check())
    try:
        answers = await gateway.intake.submit(checking)
    except BadReading as exc:
        if single:
            refusal = ReadingRefused(exc.message, exc.code)
            return _error(refusal.status, refusal.code, refusal.message)
        status = 413 if exc.code in ("too_many", "too_large") else 400
        return _error(status, exc.code, exc.message)
    except MedchainError as exc:
        return _unavailable(exc)
    if single:
        (answer,) = answers
        if isinstance(answer, ReadingRefused):
            return _error(answer.status, answer.code, answer.message, answer.retry_after_s)
        return JSONResponse(answer.answer(), status_code=202)
    items = checking.result()
    if not items:
        return _error(400, "malformed", "the array holds no reading")
    answered = iter(answers)
    results = [
        ReadingRefused(item.message, item.code).answer()
        if isinstance(item, BadReading)
        else next(answered).answer()
        for item in items
    ]
    return JSONResponse({"results": results}, status_code=207)


async def _get_reading(reading_id: str, request: Request) -> JSONResponse | dict[str, Any]:
    """A reading's status (and, once committed, its batch, device, patient, time, bundle
    CID and Merkle proof), to a signed read by someone allowed to know of it."""
    try:
        rid = bytes.fromhex(reading_id)
        if len(rid) != 32:
            raise ValueError
    except ValueError:
        return _error(400, "malformed", "a reading id is 64 hex digits")
    gateway: _Gateway = request.app.state.gateway
    service = gateway.service
    try:
        signed = verified_read(request, service.chain.chain_id)
        status = await gateway.call(
            service.read_status, rid, signed.public_key, signed.purpose, signed.now_ms
        )
    except ReadRefused as exc:
        return _error(exc.status, exc.code, exc.message, headers=exc.headers)
    except ReadNotAllowed as exc:
        return _error(403, exc.code, exc.message)
    except MedchainError as exc:
        return _unavailable(exc)
    if status.state == "unknown":
        return _error(404, "unknown_reading", f"no reading {reading_id} at this gateway")
    return status_body(reading_id, status)


__all__ = [
    "GroupedIntake",
    "create_gateway_app",
    "flush_batches",
    "flush_loop",
    "make_call",
    "refresh_loop",
]
