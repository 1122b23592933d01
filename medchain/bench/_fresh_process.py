"""Measuring in a fresh interpreter, so a figure such as peak memory is that of the work
measured, not of what the benchmark did before it (building a store, say)."""

from __future__ import annotations

import contextlib
import multiprocessing
import queue
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any


def run_in_fresh_process(target: Callable[..., None], *args: Any) -> Any:
    """Run `target(*args, results)` in a new interpreter (spawned, not forked) and return
    the one thing it puts on the queue `results`; RuntimeError if it dies first."""
    context = multiprocessing.get_context("spawn")
    results: multiprocessing.Queue[Any] = context.Queue()
    child = context.Process(target=target, args=(*args, results))
    child.start()
    while True:
        try:
            result = results.get(timeout=1)
            break
        except queue.Empty:
            if not child.is_alive():
                raise RuntimeError(
                    f"the measuring process failed (exit code {child.exitcode}); see above"
                ) from None
    child.join()
    return result


def peak_rss_kib() -> int:
    """This process image's peak resident memory. Linux's VmHWM, because getrusage's
    maxrss survives fork and exec: it would report the parent's peak (the build)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
