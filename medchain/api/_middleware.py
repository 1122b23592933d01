"""ASGI middleware around the API: request metrics, the catch-all that turns a bug
into a logged 500 JSON body, and body size limits (checked on Content-Length and on
the bytes actually received, so a chunked or lying request is stopped too)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from medchain.api._errors import ApiError, error_response, internal_error

_LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0)


class ApiMetrics:
    """Requests by method, route template and status; latency by route; body bytes in
    and out (what the API costs the node in traffic). Registered when the API is
    created, so they show in /metrics before the first request."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "medchain_api_requests",
            "HTTP API requests",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "medchain_api_request_seconds",
            "HTTP API request handling time",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self.bytes_received = Counter(
            "medchain_api_received_bytes",
            "HTTP API request body bytes read (headers not included)",
            registry=registry,
        )
        self.bytes_sent = Counter(
            "medchain_api_sent_bytes",
            "HTTP API response body bytes sent (headers not included)",
            registry=registry,
        )


class RequestMetrics:
    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        received = sent = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def observing_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, counting_receive, observing_send)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # the template: few labels
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
            self.metrics.bytes_received.inc(received)
            self.metrics.bytes_sent.inc(sent)


class CatchAll:
    """Any exception that escaped the handlers is a bug: log it, answer 500 JSON."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            response = internal_error()  # logs the traceback
            if started:
                raise  # too late for a body: the server closes the connection
            await response(scope, receive, send)


class BodyLimit:
    """Refuse request bodies over `limit_for(scope)` bytes with a 413."""

    def __init__(self, app: ASGIApp, limit_for: Callable[[Scope], int]) -> None:
        self.app = app
        self.limit_for = limit_for

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared == -1:
            response = error_response(
                400, "bad_request", "the Content-Length header is not a byte count"
            )
            await response(scope, receive, send)
            return
        if declared is not None and declared > limit:
            await _too_large(limit)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large_error(limit)
            return message

        await self.app(scope, counting_receive, send)


def _content_length(scope: Scope) -> int | None:
    """The declared body size; None if not declared, -1 if malformed."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else -1
    return None


def _message(limit: int) -> str:
    return (
        f"the request body is over this endpoint's limit of {limit:,} bytes; send less "
        "(split a batch, or store large data as several blobs)"
    )


def _too_large_error(limit: int) -> ApiError:
    return ApiError(413, "body_too_large", _message(limit))


def _too_large(limit: int) -> ASGIApp:
    """Sent before reading the body, so the connection is closed after it."""
    return error_response(413, "body_too_large", _message(limit), {"Connection": "close"})
