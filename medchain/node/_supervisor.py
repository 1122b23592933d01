"""Child processes that serve HTTP (node processes, a gateway), started, waited for and
stopped in one way by whoever runs them: the devnet commands, the demo, the benchmarks
and the multi-process tests.

A `Program` says what to run: a command line, the file its output goes to, the URL
that answers 200 once it serves, and the log it keeps itself. `Child` is a started
program (a `Popen`); `wait_healthy` waits for children with a deadline and, when one
dies or never answers, fails with an error that quotes the end of its log;
`stop_processes` asks with SIGTERM and kills what is still there after a grace
period. `Supervisor` keeps one caller's children by name and stops them all on the
way out of its `with` block, whatever the cause (an error, Ctrl-C)."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Self

from medchain.types import MedchainError

STOP_GRACE_S = 10.0
"""How long a child may take to stop on SIGTERM before it is killed."""
START_TIMEOUT_S = 60.0
"""How long a child may take to answer its health URL: node processes import the
whole stack first, slow on a busy machine."""
KILL_WAIT_S = 5.0
_POLL_S = 0.1
TAIL_LINES = 20

Progress = Callable[[Mapping[str, int | None], float], None]
"""Told, at each round of a wait, every child's health status (None: no answer
yet) and the seconds waited so far."""


class ProcessFailed(MedchainError):
    """A child died or never answered. The message names it and quotes the last line
    of its output or log; `tail` holds the end of both, for whoever shows more."""

    code = "process_failed"

    def __init__(self, message: str, tail: str = "") -> None:
        super().__init__(message)
        self.tail = tail


@dataclass(frozen=True, slots=True)
class Program:
    """A process to run: `argv`, its stdout and stderr into `output` (emptied at each
    start, so it stays small), healthy once `health_url` answers 200. `log` is a log
    the program writes itself, quoted first when it fails. `own_session` puts it in a
    session of its own: Ctrl-C in a terminal reaches the caller only (which stops its
    children in order), it may outlive the caller, and a kill reaches its own
    children too."""

    name: str
    argv: tuple[str, ...]
    output: Path
    health_url: str | None = None
    log: Path | None = None
    own_session: bool = True
    env: tuple[tuple[str, str], ...] = (("PYTHONUNBUFFERED", "1"),)

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The end of its log, then of its output if it holds anything."""
        parts = []
        for path in (self.log, self.output):
            if path is None:
                continue
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if text.strip():
                parts.append(f"--- {path} ---\n" + "\n".join(text.splitlines()[-lines:]))
        return "\n".join(parts) or f"(nothing in {self.output})"

    def last_line(self) -> str:
        """What it said last: the end of its output (an error before its logging was
        set up, a crash), else of its log."""
        for path in (self.output, self.log):
            if path is None:
                continue
            with contextlib.suppress(OSError):
                lines = [line for line in path.read_text(errors="replace").splitlines() if line]
                if lines:
                    return lines[-1].strip()
        return f"nothing in {self.output}"


class Child(subprocess.Popen[bytes]):
    """A started `Program`: a `Popen` that knows where it logs and answers."""

    def __init__(self, program: Program) -> None:
        self.program = program
        program.output.parent.mkdir(parents=True, exist_ok=True)
        with program.output.open("wb") as out:
            super().__init__(
                list(program.argv),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=program.own_session,
                env={**os.environ, **dict(program.env)},
            )

    @property
    def name(self) -> str:
        return self.program.name

    def health(self) -> int | None:
        url = self.program.health_url
        return health_status(url) if url is not None else None


def health_status(url: str, timeout_s: float = 2.0) -> int | None:
    """The status `url` answers a GET with; None if nothing answers. Straight to the
    address (never through a proxy): these are processes on this machine."""
    parts = urllib.parse.urlsplit(url)
    kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    conn = kind(parts.hostname or "127.0.0.1", parts.port, timeout=timeout_s)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_healthy(
    targets: Sequence[Child | Program],
    timeout_s: float = START_TIMEOUT_S,
    progress: Progress | None = None,
) -> float:
    """Until every target's health URL answers 200; the seconds it took. A `Program`
    stands for a process started elsewhere (only its URL is asked). ProcessFailed,
    quoting the end of the log, as soon as a child exits, or past `timeout_s`."""
    began = time.monotonic()
    status: dict[str, int | None] = {_program(t).name: None for t in targets}
    while True:
        for target in targets:
            name = _program(target).name
            if status[name] == 200:
                continue
            if isinstance(target, Child) and target.poll() is not None:
                raise ProcessFailed(
                    f"{name} exited with status {target.returncode} while starting: "
                    f"{target.program.last_line()} ({_where(target.program)})",
                    target.program.tail(),
                )
            url = _program(target).health_url
            status[name] = health_status(url) if url is not None else 200
        elapsed = time.monotonic() - began
        if progress is not None:
            progress(status, elapsed)
        late = [t for t in targets if status[_program(t).name] != 200]
        if not late:
            return elapsed
        if elapsed > timeout_s:
            first = _program(late[0])
            raise ProcessFailed(
                f"{', '.join(_program(t).name for t in late)} did not answer "
                f"{first.health_url} within {timeout_s:.0f} s; {first.name} said last: "
                f"{first.last_line()} ({_where(first)})",
                first.tail(),
            )
        time.sleep(_POLL_S)


def _where(program: Program) -> str:
    logs = [str(p) for p in (program.log, program.output) if p is not None]
    return "see " + " and ".join(logs)


def _program(target: Child | Program) -> Program:
    return target.program if isinstance(target, Child) else target


def stop_processes(
    processes: Iterable[subprocess.Popen[bytes]], grace_s: float = STOP_GRACE_S
) -> int:
    """SIGTERM every process still running (and SIGCONT, so a stopped one acts on
    it), so they stop side by side; give each `grace_s` to exit, then SIGKILL it (its
    whole process group if it leads one). How many were running."""
    running = [p for p in processes if p.poll() is None]
    for proc in running:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
            proc.send_signal(signal.SIGCONT)
    for proc in running:
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            kill_process(proc)
    return len(running)


def kill_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL, as in a crash or a power cut (its process group too if it leads one),
    and reap it."""
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(proc.pid) == proc.pid:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    proc.wait(KILL_WAIT_S)


def terminate_pid(pid: int, gone: Callable[[], bool], grace_s: float = STOP_GRACE_S) -> bool:
    """Stop a process this one did not start (found in a pid file): SIGTERM, wait
    until `gone()`, SIGKILL after `grace_s`. True if it had to be killed."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        if gone():
            return False
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    return True


@contextlib.contextmanager
def signals_raise(
    signals: Iterable[int], exception: Callable[[int], BaseException]
) -> Iterator[None]:
    """Inside the block these signals raise `exception(signum)`, as Ctrl-C raises
    KeyboardInterrupt, so a SIGTERM or a closed terminal unwinds the caller and its
    children are stopped rather than orphaned; a second one is ignored so it cannot cut
    that short. Outside the main thread, signals are left alone."""
    wanted = list(signals)

    def leave(signum: int, _frame: FrameType | None) -> None:
        for sig in wanted:
            signal.signal(sig, signal.SIG_IGN)
        raise exception(signum)

    try:
        previous = {sig: signal.signal(sig, leave) for sig in wanted}
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class Supervisor:
    """One caller's children, by name; a `with` block stops them all on the way out."""

    def __init__(self, grace_s: float = STOP_GRACE_S) -> None:
        self.grace_s = grace_s
        self.children: dict[str, Child] = {}
        self._ended: set[str] = set()
        """Children this supervisor stopped or killed (they did not crash)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()

    def start(self, program: Program) -> Child:
        """Start `program` (again, if a child of that name has exited)."""
        old = self.children.get(program.name)
        if old is not None and old.poll() is None:
            raise ProcessFailed(f"{program.name} is already running (pid {old.pid})")
        child = Child(program)
        self.children[program.name] = child
        self._ended.discard(program.name)
        return child

    def wait_healthy(
        self,
        names: Sequence[str] | None = None,
        timeout_s: float = START_TIMEOUT_S,
        progress: Progress | None = None,
    ) -> float:
        chosen = names if names is not None else list(self.children)
        return wait_healthy([self.children[n] for n in chosen], timeout_s, progress)

    def kill(self, name: str) -> None:
        kill_process(self.children[name])
        self._ended.add(name)

    def stop(self, name: str, grace_s: float | None = None) -> bool:
        """True if it was running."""
        self._ended.add(name)
        return stop_processes([self.children[name]], self._grace(grace_s)) > 0

    def stop_all(self, grace_s: float | None = None) -> int:
        """How many were running."""
        self._ended.update(self.children)
        return stop_processes(self.children.values(), self._grace(grace_s))

    def _grace(self, grace_s: float | None) -> float:
        return self.grace_s if grace_s is None else grace_s

    def crashed(self) -> list[str]:
        """Children that exited on their own."""
        return [
            name
            for name, child in self.children.items()
            if child.poll() is not None and name not in self._ended
        ]


# -- ports ------------------------------------------------------------------------------

P2P_PORT_OFFSET = 500
"""`free_port_base` leaves P2P ports this far above the API ports."""


def free_port_base(count: int, host: str = "127.0.0.1") -> int:
    """A base port such that base .. base+count-1 (APIs) and base+500 .. base+500+count-1
    (P2P) are free on `host` now: for processes started next to others (tests, demos,
    benchmarks)."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    # below the kernel's ephemeral range: a port checked free there could be taken by
    # an outgoing connection before the node binds it
    top = min(_ephemeral_start(), 60_000) - P2P_PORT_OFFSET - count
    for _ in range(200):
        base = rng.randrange(10_000, max(top, 10_010), 10)
        ports = [
            *range(base, base + count),
            *range(base + P2P_PORT_OFFSET, base + P2P_PORT_OFFSET + count),
        ]
        if all(_port_free(host, port) for port in ports):
            return base
    raise ProcessFailed(f"no {2 * count} free ports on {host}")


def _ephemeral_start() -> int:
    """The first port the kernel hands to outgoing connections (Linux; else IANA's)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 49_152


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
