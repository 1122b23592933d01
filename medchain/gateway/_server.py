"""The gateway's HTTP face: devices POST signed readings, ask for their status and proof.

A request's readings are parsed and checked in the gateway's intake workers
(medchain.gateway._intake), then decided on by the synchronous pipeline
(GatewayService.submit_checked) in a worker thread, so a chain lookup never stalls the
loop; one background task flushes batches when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medchain.crypto import format_address
from medchain.gateway._intake import CheckedReading, IntakeCheckers
from medchain.gateway._readings import BadReading
from medchain.gateway._service import Accepted, GatewayService, ReadingRefused
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway")
T = TypeVar("T")
Answer = Accepted | ReadingRefused
Checked = CheckedReading | BadReading


def _error(status: int, code: str, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _unavailable(exc: MedchainError) -> JSONResponse:
    log.warning("readings not processed: %s", exc.message)
    return _error(
        503, "unavailable", f"the gateway cannot process readings now: {exc.message}; resend later"
    )


async def flush_loop(service: GatewayService, poll_s: float = 0.05) -> None:
    """Commit batches when due; a failed flush is logged and retried on the next poll."""
    while True:
        if service.due():
            try:
                await run_in_threadpool(service.flush)
            except MedchainError as exc:
                log.warning("batch not committed, retrying: %s", exc.message)
                await asyncio.sleep(1)
        await asyncio.sleep(poll_s)


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


def create_gateway_app(
    service: GatewayService,
    *,
    background: bool = True,
    threads: bool = True,
    checkers: IntakeCheckers | None = None,
) -> FastAPI:
    """`background=False` leaves flushing to the caller (tests call `service.flush`);
    `threads=False` runs the pipeline on the loop thread, for a backend bound to one
    thread (an in-process LocalChain's SQLite store). `checkers`: where readings' stateless
    checks run (the gateway's intake workers); without, in the pipeline's thread."""

    async def call(fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, *args) if threads else fn(*args)

    checks = checkers if checkers is not None else IntakeCheckers(0, call)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(flush_loop(service)) if background else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if service.pending_count:
                await call(service.flush)  # nothing accepted is left behind

    app = FastAPI(title="medchain gateway", lifespan=lifespan)
    intake = GroupedIntake(service, call)
    limit = service.config.max_readings_per_request

    @app.get("/v1/health")
    async def health() -> dict[str, Any]:
        return {
            "ok": True,
            "gateway": format_address(service.address),
            "pending": service.pending_count,
        }

    @app.post("/v1/readings", response_model=None)
    async def post_readings(request: Request) -> JSONResponse:
        """One reading (a JSON object), or an array of them from a hub relaying several
        devices: the array's readings are checked in order and persisted together."""
        body = await request.body()
        single = not body.lstrip().startswith(b"[")

        async def check() -> list[Checked]:
            if single:
                return [await checks.check_json(body)]
            return await checks.check_json_array(body, limit)

        checking = asyncio.ensure_future(check())
        try:
            answers = await intake.submit(checking)
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
        results = []
        answered = iter(answers)
        for item in items:
            if isinstance(item, BadReading):
                results.append(ReadingRefused(item.message, item.code).answer())
            else:
                results.append(next(answered).answer())
        return JSONResponse({"results": results}, status_code=207)

    @app.get("/v1/readings/{reading_id}", response_model=None)
    async def get_reading(reading_id: str) -> JSONResponse | dict[str, Any]:
        try:
            rid = bytes.fromhex(reading_id)
            if len(rid) != 32:
                raise ValueError
        except ValueError:
            return _error(400, "malformed", "a reading id is 64 hex digits")
        status = service.status(rid)
        if status.state == "unknown":
            return _error(404, "unknown_reading", f"no reading {reading_id} at this gateway")
        body: dict[str, Any] = {"id": reading_id, "status": status.state}
        if status.committed is not None:
            c = status.committed
            body |= {
                "batch": c.batch_id.hex(),
                "device": format_address(c.device),
                "patient": format_address(c.patient),
                "time_ms": c.time_ms,
                "bundle_cid": c.cid,
                "proof": {
                    "root": c.proof.root.hex(),
                    "index": c.proof.index,
                    "tree_size": c.proof.tree_size,
                    "path": [h.hex() for h in c.proof.path],
                },
            }
        return body

    return app


__all__ = ["GroupedIntake", "create_gateway_app", "flush_loop"]
