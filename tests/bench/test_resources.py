"""The per-process sampler: resident memory (and its peak) and CPU of a process, with
its descendants when asked, read from a real child process that allocates and spins."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from medchain.bench._resources import peak_rss_bytes, process_usage

_HOLD = 200_000_000  # bytes the child touches and holds

# the child reads a line, then allocates and touches _HOLD bytes and spins for CPU,
# says "ready" and waits for its input to close
_CHILD = f"""
import sys, time
sys.stdin.readline()
held = bytearray({_HOLD})
for i in range(0, len(held), 4096):
    held[i] = 1
end = time.process_time() + 0.3
while time.process_time() < end:
    pass
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def child() -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def test_a_process_grows_by_what_it_holds(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None and child.stdout is not None
    before = process_usage(child.pid, descendants=False)
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "ready"
    after = process_usage(child.pid, descendants=False)
    assert before is not None and after is not None
    assert after.rss_bytes - before.rss_bytes >= _HOLD * 0.9
    assert after.cpu_s - before.cpu_s >= 0.25
    assert after.processes == 1
    peak = peak_rss_bytes(child.pid)  # Linux's VmHWM: at least what it holds now
    assert peak is not None and peak >= after.rss_bytes and peak >= _HOLD * 0.9


def test_descendants_are_summed_only_when_asked(child: subprocess.Popen[str]) -> None:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "ready"
    alone = process_usage(os.getpid(), descendants=False)
    tree = process_usage(os.getpid(), descendants=True)
    held = process_usage(child.pid, descendants=False)
    assert alone is not None and tree is not None and held is not None
    assert tree.processes >= 2 and alone.processes == 1
    assert tree.rss_bytes >= alone.rss_bytes + held.rss_bytes * 0.9
    assert tree.rss_bytes == sum(tree.rss_by_pid.values())
    assert tree.rss_by_pid[child.pid] >= _HOLD * 0.9 and os.getpid() in tree.rss_by_pid
    assert list(alone.rss_by_pid) == [os.getpid()]


def test_a_process_that_is_gone_has_no_usage() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # exited and reaped: its pid names no process
    assert process_usage(proc.pid, descendants=True) is None
    assert process_usage(proc.pid, descendants=False) is None
    assert peak_rss_bytes(proc.pid) is None
