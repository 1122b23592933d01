"""One node process (`medchain node --home DIR`): its pid file, its log, the
collector's settings and the signals that stop it, around a `Node` and the API that
serves it (handed in: the API is a layer above)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from medchain.node._config import PID_FILE, NodeConfig
from medchain.node._disk_reserve import release_disk_reserve
from medchain.node._join import join_from_snapshot
from medchain.node._logging import configure_node_logging, watch_log_disk
from medchain.node._runtime import Node
from medchain.store import DiskFull, raise_if_disk_full
from medchain.types import MedchainError

log = logging.getLogger("medchain.node")

EXIT_DISK_FULL = 75
"""The exit status of a node that stopped because a disk it writes to is full
(sysexits' EX_TEMPFAIL: free space, then start it again)."""


class NodeApi(Protocol):
    """The node's HTTP API as this process runs it."""

    @property
    def url(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def run_node_process(
    home: Path, config: NodeConfig, api: Callable[[Node, NodeConfig], NodeApi]
) -> None:
    """Run the node of `home` in this process until SIGINT or SIGTERM. Its pid file
    says it runs (`devnet down`, `recover` read it) and is removed when it stops; why
    it stopped on an error goes to its log. A full disk stops it with one line in its
    log and on stderr, and exit status EXIT_DISK_FULL."""
    try:
        _run(home, config, api)
    except DiskFull as exc:
        release_disk_reserve(home)  # room for the line below
        log.error("the node stopped: %s", exc.message)
        with contextlib.suppress(OSError):  # stderr may be a file on the full disk
            print(f"error ({exc.code}): {exc.message}", file=sys.stderr, flush=True)
        raise SystemExit(EXIT_DISK_FULL) from None


def _run(home: Path, config: NodeConfig, api: Callable[[Node, NodeConfig], NodeApi]) -> None:
    pid_file = home / PID_FILE
    try:
        configure_node_logging(home, config)
        pid_file.write_text(f"{os.getpid()}\n")
    except OSError as exc:
        with contextlib.suppress(OSError):
            if not pid_file.read_text().strip():
                pid_file.unlink()  # created, but nothing could be written to it
        raise_if_disk_full(exc, home, "the node's log or pid file")
        raise
    try:
        asyncio.run(_serve_node(home, config, api))
    except DiskFull:
        raise
    except MedchainError as exc:
        log.error("the node stopped: %s", exc.message)
        raise
    except Exception:
        log.exception("the node stopped on an unexpected error")
        raise
    finally:
        with contextlib.suppress(OSError):
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()


async def _serve_node(
    home: Path, config: NodeConfig, api_for: Callable[[Node, NodeConfig], NodeApi]
) -> None:
    joined = await join_from_snapshot(home, config)
    node = Node(home, config, snapshot_stats=None if joined is None else joined.stats)
    watch_log_disk(node.disk_full)
    # The loaded state and code are long-lived: keep them out of the collector's scans,
    # and collect young objects less often (a full scan of a large heap stalls the one
    # loop that serves consensus and the API alike).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    api = api_for(node, config)
    await node.start()
    try:
        await api.start()
        log.info("%s serves its API on %s", config.name, api.url)
        await node.until_stopped(stop)
    finally:
        await api.stop()
        await node.close()
