"""Serving the app on 127.0.0.1 with uvicorn: the socket is bound first, so the URL
printed (with its token) names the port actually taken, even for `--port 0`."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import uvicorn
from starlette.applications import Starlette

from medchain.types import MedchainError
from medchain.web._guard import Secrets

HOST = "127.0.0.1"


class PortTaken(MedchainError):
    """The port asked for cannot be bound (another program holds it)."""


SHUTDOWN_GRACE_S = 2
"""Open event streams never end by themselves: a stop waits this long for them."""


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:`port`, or PortTaken saying what to do."""
    try:
        return socket.create_server((HOST, port))
    except OSError as exc:
        raise PortTaken(
            f"cannot serve on {HOST}:{port} ({exc.strerror}); choose another with --port"
        ) from None


def app_url(port: int, keys: Secrets) -> str:
    return f"http://{HOST}:{port}/?token={keys.url_token}"


def serve(
    make_app: Callable[[int, Secrets], Starlette],
    port: int,
    announce: Callable[[str], None],
) -> None:
    """Bind `port` (0: any free one), build the app for it, print its URL with
    `announce` and serve until interrupted."""
    sock = bind(port)
    taken = int(sock.getsockname()[1])
    keys = Secrets()
    app = make_app(taken, keys)
    config = uvicorn.Config(
        app,
        log_level="warning",
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        access_log=False,
    )
    announce(app_url(taken, keys))
    uvicorn.Server(config).run(sockets=[sock])


@contextmanager
def serving(make_app: Callable[[int, Secrets], Starlette]) -> Iterator[str]:
    """The app `make_app` builds, served on a free port of 127.0.0.1 from a thread of
    this process while the block runs (a benchmark's browser opens it); yields the
    link with its token."""
    sock = bind(0)
    port = int(sock.getsockname()[1])
    keys = Secrets()
    config = uvicorn.Config(
        make_app(port, keys), log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE_S
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=asyncio.run, args=(server.serve([sock]),), daemon=True)
    thread.start()
    try:
        yield app_url(port, keys)
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_GRACE_S * 10)
        sock.close()
