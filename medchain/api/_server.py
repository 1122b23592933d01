"""`ApiServer`: the API on uvicorn inside the caller's running event loop, so the
endpoints share the loop thread with consensus and the stores (single-thread
SQLite). Signal handling is left to the caller: the node owns SIGINT and SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Generator

import uvicorn

from medchain.api._app import DEFAULT_MAX_BODY_BYTES, create_api
from medchain.api._service import NodeService
from medchain.types import MedchainError


class ApiServerError(MedchainError):
    code = "api_server_error"


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # uvicorn would take over SIGINT/SIGTERM in the main thread


class ApiServer:
    def __init__(
        self,
        service: NodeService,
        host: str = "127.0.0.1",
        port: int = 8600,
        *,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        access_log: bool = False,
    ) -> None:
        """`port` 0 picks a free port (read it from `port` once started)."""
        self.host = host
        self.port = port
        """The port listened on: the one picked by the system once started with 0."""
        config = uvicorn.Config(
            create_api(service, max_body_bytes=max_body_bytes),
            log_config=None,  # keep the node's logging set-up
            access_log=access_log,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        """Listen; returns once requests are being served."""
        if self._task is not None:
            raise RuntimeError("the API server is already started")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started:
            if self._task.done():
                await self._task
                raise ApiServerError(f"the API server on {self.url} stopped while starting")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        """Stop listening, let requests in flight finish (5 s at most), and return."""
        if self._task is None:
            return
        self._server.should_exit = True
        await self._task


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto says TCP,
    # and without it each answer on a kept-alive connection (headers, then body) waits
    # ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ApiServerError(
            f"cannot serve the API on {host}:{port} ({exc.strerror or exc}); choose another "
            "port, or stop the process using it"
        ) from None
    return sock
