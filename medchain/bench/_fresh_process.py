"""Measuring in a fresh interpreter, so a figure such as peak memory is that of the work
measured, not of what the benchmark did before it (building a store, say)."""

from __future__ import annotations

import multiprocessing
import queue
import resource
from collections.abc import Callable
from typing import Any

from medchain.bench._resources import peak_rss_bytes


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
    peak = peak_rss_bytes("self")
    return peak // 1024 if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
