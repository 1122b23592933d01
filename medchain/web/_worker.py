"""One thread that owns the chain connection: a local chain's SQLite store may be used
only from the thread that opened it, and the SDK's calls block; the app's event loop
hands each call to this thread and awaits it, so pages never stall each other's I/O
beyond one call at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, ExitStack
from typing import Generic, TypeVar

T = TypeVar("T")
B = TypeVar("B")


class ChainWorker(Generic[B]):
    """Opens `open_backend()` on its own thread and runs every call there."""

    def __init__(self, open_backend: Callable[[], AbstractContextManager[B]]) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="medchain-web")
        self._stack = ExitStack()
        self.backend: B = self._pool.submit(self._stack.enter_context, open_backend()).result()

    def call(self, call: Callable[[], T]) -> T:
        """Run `call` on the chain's thread and wait for it (outside the event loop)."""
        return self._pool.submit(call).result()

    async def run(self, call: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def close(self) -> None:
        self._pool.submit(self._stack.close).result()
        self._pool.shutdown()
