"""Who a request comes from, and the gate that turns away a client whose budget of
verification work is overdrawn before its body is read.

The node charges a client's budget for the signature work of the transactions it does
not get admitted (see `medchain.node._admission`). A client over budget would still cost
the loop the parsing of every body it sends (a batch is megabytes of JSON), so the
routes that admit transactions answer it 429 from the request line alone and close the
connection, leaving the body unread."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from medchain.api._errors import error_response

ADMITTING_ROUTES = frozenset({"/v1/txs", "/v1/txs/batch", "/v1/records"})
"""POST routes that admit transactions (and so verify signatures)."""
UNKNOWN_CLIENT = "unknown"
"""The budget of requests whose peer address the server does not know (a Unix socket)."""


def client_of(scope: Scope) -> str:
    """The address a request comes from: its TCP peer's host. Behind a reverse proxy
    that is the proxy's, shared by every client: limit clients at the proxy then."""
    client = scope.get("client")
    return str(client[0]) if client else UNKNOWN_CLIENT


HOLD_S = 1.0
"""Longest a refused request is held before its 429 is sent."""
MAX_HELD = 256
"""Refused requests held at once; past that they are answered at once."""
hold = asyncio.sleep


class AdmissionGate:
    """429 with Retry-After, before the body, for a client that must wait; `wait_s`
    says how long (0: let it in). The answer is held for that wait (at most `HOLD_S`):
    a client that ignores Retry-After and sends again at once then costs the loop one
    refusal a second per connection instead of hundreds (a timer, while held)."""

    def __init__(self, app: ASGIApp, wait_s: Callable[[str], float]) -> None:
        self.app = app
        self.wait_s = wait_s
        self.held = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "POST"
            and scope["path"].rstrip("/") in ADMITTING_ROUTES
        ):
            client = client_of(scope)
            wait = self.wait_s(client)
            if wait > 0:
                held = min(wait, HOLD_S) if self.held < MAX_HELD else 0.0
                if held:
                    self.held += 1
                    try:
                        await hold(held)
                    finally:
                        self.held -= 1
                retry = max(1, math.ceil(wait - held))
                response = error_response(
                    429,
                    "rate_limited",
                    f"client {client} made this node verify more signatures of transactions "
                    f"it did not admit than its budget allows; retry in {retry} s",
                    {"Retry-After": str(retry), "Connection": "close"},
                )
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
