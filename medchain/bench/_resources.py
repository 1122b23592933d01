"""What a process uses, read by psutil: resident memory and CPU seconds of the process,
with every process below it when asked (a gateway's intake workers are its children, so
a leak in a worker shows in its parent's figures)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import psutil


@dataclass(frozen=True)
class Usage:
    rss_bytes: int
    """Resident memory of the process and its descendants, summed."""
    cpu_s: float
    """User + system CPU seconds of the process and its descendants (those that exited
    too, once waited for)."""
    processes: int
    """How many processes the figures sum."""
    rss_by_pid: dict[int, int]
    """Each summed process's resident memory, by pid: which of them grows."""


def process_usage(pid: int, *, descendants: bool) -> Usage | None:
    """The usage of process `pid`, and of its descendants with `descendants`; None if
    `pid` is gone. A descendant that exits while it is read is left out."""
    try:
        root = psutil.Process(pid)
        tree = [root, *root.children(recursive=True)] if descendants else [root]
    except psutil.NoSuchProcess:
        return None
    cpu = 0.0
    rss_by_pid: dict[int, int] = {}
    for process in tree:
        try:
            with process.oneshot():
                memory = process.memory_info()
                times = process.cpu_times()
        except psutil.NoSuchProcess:
            if process is root:
                return None
            continue
        rss_by_pid[process.pid] = memory.rss
        cpu += times.user + times.system
        if descendants:
            cpu += times.children_user + times.children_system
    return Usage(sum(rss_by_pid.values()), cpu, len(rss_by_pid), rss_by_pid)


def peak_rss_bytes(pid: int | str) -> int | None:
    """The peak resident memory of process `pid` ("self": this one) since it started:
    Linux's VmHWM, which psutil does not give; None where /proc does not tell."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


__all__ = ["Usage", "peak_rss_bytes", "process_usage"]
