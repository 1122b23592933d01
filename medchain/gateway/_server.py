"""The gateway's HTTP face: devices POST signed readings, ask for their status and proof.

The pipeline is synchronous (GatewayService); handlers run it in a worker thread so a
chain lookup never stalls the loop, and one background task flushes batches when due.
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
from medchain.gateway._readings import BadReading, SignedReading, readings_from_json_array
from medchain.gateway._service import Accepted, GatewayService, ReadingRefused
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway")
T = TypeVar("T")


def _error(status: int, code: str, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _refusal(exc: ReadingRefused) -> dict[str, Any]:
    answer = {"accepted": False, "status": exc.status, "error": exc.code, "message": exc.message}
    if exc.retry_after_s is not None:
        answer["retry_after_s"] = round(exc.retry_after_s, 3)
    return answer


def _acceptance(accepted: Accepted) -> dict[str, Any]:
    return {"accepted": True, "id": accepted.reading_id.hex(), "duplicate": accepted.duplicate}


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


def create_gateway_app(
    service: GatewayService, *, background: bool = True, threads: bool = True
) -> FastAPI:
    """`background=False` leaves flushing to the caller (tests call `service.flush`);
    `threads=False` runs the pipeline on the loop thread, for a backend bound to one
    thread (an in-process LocalChain's SQLite store)."""

    async def call(fn: Callable[..., T], *args: Any) -> T:
        return await run_in_threadpool(fn, *args) if threads else fn(*args)

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
        if not body.lstrip().startswith(b"["):
            try:
                accepted = await call(service.submit_json, body)
            except ReadingRefused as exc:
                return _error(exc.status, exc.code, exc.message, exc.retry_after_s)
            return JSONResponse(_acceptance(accepted), status_code=202)
        try:
            parsed = readings_from_json_array(body, limit)
        except BadReading as exc:
            status = 413 if exc.code in ("too_many", "too_large") else 400
            return _error(status, exc.code, exc.message)
        if not parsed:
            return _error(400, "malformed", "the array holds no reading")
        signed = [r for r in parsed if isinstance(r, SignedReading)]
        answers = iter(await call(service.submit_many, signed) if signed else [])
        results = []
        for item in parsed:
            if isinstance(item, BadReading):
                results.append(_refusal(ReadingRefused(item.message, item.code)))
                continue
            answer = next(answers)
            if isinstance(answer, ReadingRefused):
                results.append(_refusal(answer))
            else:
                results.append(_acceptance(answer))
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


__all__ = ["create_gateway_app", "flush_loop"]
