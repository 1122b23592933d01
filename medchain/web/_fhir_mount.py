"""medchain's FHIR R4 facade (`medchain.fhir.create_fhir_app`) served by the app itself
under /fhir, so that an EHR can talk to the running app: the same account, the same
SDK client and so one source of its records.

The facade calls its source on its own event loop, and the app's chain lives in the
worker's thread (a local chain's SQLite store may be used only there), so the facade
runs on a loop of its own in that thread: each request is read on the app's loop,
answered by the facade on the worker, and sent back. The guard has already let the
request in (the app's session, or the bearer token printed at start); the facade is
then handed that same token."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from medchain.client import MedchainClient
from medchain.fhir import AccountSource, create_fhir_app
from medchain.gateway import CheckedBundles
from medchain.web._guard import FHIR_PATH
from medchain.web._worker import ChainWorker

_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection"})
_NOT_FORWARDED = frozenset({"authorization", "cookie", "content-length"})


class FhirMount:
    """An ASGI app answering /fhir/... with the facade over `client`, guarded by `token`."""

    def __init__(
        self,
        worker: ChainWorker[Any],
        client: MedchainClient,
        token: str,
        checked: CheckedBundles | None = None,
    ) -> None:
        """`checked`: the app's memory of checked vitals bundles, shared by the facade."""
        self._worker = worker
        self._token = token
        self._loop, self._stack, self._http = worker.call(lambda: self._start(client, checked))

    def _start(
        self, client: MedchainClient, checked: CheckedBundles | None
    ) -> tuple[asyncio.AbstractEventLoop, AsyncExitStack, httpx.AsyncClient]:
        """On the worker's thread: the facade, its lifespan entered (its export jobs)."""
        loop = asyncio.new_event_loop()
        facade = create_fhir_app(AccountSource(client, checked=checked), self._token)
        stack = AsyncExitStack()
        loop.run_until_complete(stack.enter_async_context(facade.router.lifespan_context(facade)))
        transport = httpx.ASGITransport(app=facade, root_path=FHIR_PATH)
        return loop, stack, httpx.AsyncClient(transport=transport)

    def _answer(self, method: str, url: str, headers: list[tuple[str, str]], body: bytes) -> Any:
        request = self._http.request(method, url, headers=headers, content=body)
        return self._loop.run_until_complete(request)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k not in _NOT_FORWARDED]
        headers.append(("authorization", f"Bearer {self._token}"))
        method, url = request.method, str(request.url)
        answer: httpx.Response = await self._worker.run(
            lambda: self._answer(method, url, headers, body)
        )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP}
        await Response(answer.content, answer.status_code, kept)(scope, receive, send)

    def close(self) -> None:
        """Stop the facade's export jobs and its loop (on the worker's thread)."""

        def stop() -> None:
            self._loop.run_until_complete(self._http.aclose())
            self._loop.run_until_complete(self._stack.aclose())
            self._loop.close()

        self._worker.call(stop)
