"""The gateway's HTTP face: devices POST signed readings, ask for their status and proof.

The pipeline is synchronous (GatewayService); handlers run it in a worker thread so a
chain lookup never stalls the loop, and one background task flushes batches when due.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from medchain.crypto import format_address
from medchain.gateway._service import GatewayService, ReadingRefused
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway")
T = TypeVar("T")


def _error(status: int, code: str, message: str, retry_after: float | None = None) -> JSONResponse:
    headers = {"Retry-After": str(max(1, round(retry_after)))} if retry_after else None
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


def _refusal(exc: ReadingRefused) -> dict[str, Any]:
    return {"accepted": False, "status": exc.status, "error": exc.code, "message": exc.message}


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
        body = await request.body()
        try:
            parsed = json.loads(body)
        except (UnicodeDecodeError, ValueError):
            return _error(400, "malformed", "the body must be a reading (JSON) or an array of them")
        if not isinstance(parsed, list):
            try:
                accepted = await call(service.submit_json, body)
            except ReadingRefused as exc:
                return _error(exc.status, exc.code, exc.message, exc.retry_after_s)
            return JSONResponse(
                {
                    "accepted": True,
                    "id": accepted.reading_id.hex(),
                    "duplicate": accepted.duplicate,
                },
                status_code=202,
            )
        if len(parsed) > limit:
            return _error(413, "too_many", f"send at most {limit} readings per request")
        results = []
        for item in parsed:
            try:
                accepted = await call(service.submit_json, json.dumps(item, separators=(",", ":")))
                results.append(
                    {
                        "accepted": True,
                        "id": accepted.reading_id.hex(),
                        "duplicate": accepted.duplicate,
                    }
                )
            except ReadingRefused as exc:
                results.append(_refusal(exc))
        return JSONResponse({"results": results}, status_code=207 if results else 400)

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
