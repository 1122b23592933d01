"""The chain store's upkeep while a node runs: its WAL checkpointed and truncated and
freed pages returned (`StoreMaintainer`), every `every_blocks` blocks or as soon as
the WAL passes `wal_max_bytes`; its file and WAL sizes served at /metrics.

A run happens in a worker thread, on a connection of its own, after a commit has
returned: consensus never waits for it, though a commit made while it holds the
write lock waits for it to finish (what it copies is bounded by the WAL's size, and
SQLite's own checkpoints on commit keep that small). One run at a time; a full disk
is told to `on_disk_full` (the node stops on it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge

from medchain.store import DiskFull, Maintained, StoreError, StoreMaintainer, store_files

log = logging.getLogger("medchain.node")


class StoreUpkeep:
    def __init__(
        self,
        path: Path,
        registry: CollectorRegistry,
        *,
        every_blocks: int,
        wal_max_bytes: int,
        on_disk_full: Callable[[DiskFull], None],
    ) -> None:
        self.path = path
        self.every_blocks = every_blocks
        self.wal_max_bytes = wal_max_bytes
        self._on_disk_full = on_disk_full
        self._maintainer = StoreMaintainer(path)
        self._task: asyncio.Task[None] | None = None
        self._last_height: int | None = None
        self.runs = 0
        """Maintenance runs finished (checkpointed or deferred)."""
        Gauge(
            "medchain_store_file_bytes",
            "Size of the chain store's database file",
            registry=registry,
        ).set_function(lambda: store_files(path).file_bytes)
        Gauge(
            "medchain_store_wal_bytes", "Size of the chain store's WAL file", registry=registry
        ).set_function(lambda: store_files(path).wal_bytes)

    def due(self, height: int) -> bool:
        """Whether the store should be maintained after committing `height`."""
        if self._last_height is None:
            self._last_height = height
        if height - self._last_height >= self.every_blocks:
            return True
        return store_files(self.path).wal_bytes > self.wal_max_bytes

    def after_commit(self, height: int) -> None:
        """On the node's loop, once block `height` is stored: start a run if one is
        due and none is running."""
        if (self._task is None or self._task.done()) and self.due(height):
            self._last_height = height
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        try:
            done = await asyncio.to_thread(self._maintainer.run)
        except DiskFull as exc:
            self._on_disk_full(exc)
            return
        except StoreError as exc:
            log.warning("the chain store's maintenance failed (it runs again): %s", exc.message)
            return
        self.runs += 1
        self._report(done)

    def _report(self, done: Maintained) -> None:
        if not done.checkpointed:
            log.info("the chain store's WAL is in use by a reader; checkpointed next time")
        elif done.freed_pages:
            log.info(
                "chain store compacted: %d free pages returned, %d bytes on disk",
                done.freed_pages,
                done.files.file_bytes,
            )

    async def close(self) -> None:
        """Wait for a run in progress, then close the maintainer's connection."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._maintainer.close()
