"""The chain's one thread: it opens the backend, runs every call, and closes it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from medchain.web._worker import ChainWorker


def test_the_backend_lives_and_dies_on_the_worker_thread() -> None:
    seen: list[str] = []

    @contextmanager
    def backend() -> Iterator[str]:
        seen.append(f"open {threading.current_thread().name}")
        yield "chain"
        seen.append(f"close {threading.current_thread().name}")

    worker = ChainWorker(backend)
    where = worker.call(lambda: threading.current_thread().name)
    awaited = asyncio.run(worker.run(lambda: threading.current_thread().name))
    worker.close()
    assert worker.backend == "chain"
    assert where == awaited != threading.current_thread().name
    assert seen == [f"open {where}", f"close {where}"]
