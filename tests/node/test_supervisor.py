"""The process supervisor with a tiny Python script as the child: it serves /health,
dies at once, never answers, or ignores SIGTERM (with a grandchild that ignores it
too). Every wait is for a condition, with a deadline far above what it needs."""

from __future__ import annotations

import os
import signal
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from medchain import node
from medchain.node import Child, ProcessFailed, Program, Supervisor
from tests.waiting import wait_until

START_S = 120.0
"""A Python child may take long to start on a busy machine."""

CHILD = """
import http.server, signal, subprocess, sys
port, mode = int(sys.argv[1]), sys.argv[2]
if mode == "die":
    print("boom: the config is damaged", file=sys.stderr)
    sys.exit(3)
if mode == "silent":
    print("listening nowhere", flush=True)
    signal.pause()
if mode == "stubborn":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.pause()"
    grandchild = subprocess.Popen([sys.executable, "-c", ignore])
    print(f"grandchild {grandchild.pid}", flush=True)

class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


def program(tmp: Path, mode: str, name: str = "child") -> Program:
    script = tmp / "child.py"
    script.write_text(CHILD)
    port = node.free_port_base(1)
    return Program(
        name=name,
        argv=(sys.executable, str(script), str(port), mode),
        output=tmp / f"{name}.out",
        health_url=f"http://127.0.0.1:{port}/health",
    )


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    node.stop_processes(started, grace_s=0.0)  # whatever a failed test left


def gone(pid: int) -> bool:
    """No such process, or a zombie nobody reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_a_healthy_child_is_waited_for_then_stopped(tmp_path: Path, children: list[Child]) -> None:
    child = Child(program(tmp_path, "serve"))
    children.append(child)
    seen: list[dict[str, int | None]] = []

    def progress(status: Mapping[str, int | None], _elapsed: float) -> None:
        seen.append(dict(status))

    node.wait_healthy([child], START_S, progress)
    assert seen[-1] == {"child": 200}
    assert child.health() == 200
    assert node.stop_processes([child]) == 1
    assert child.returncode == -signal.SIGTERM  # stopped by SIGTERM, not killed
    assert node.stop_processes([child]) == 0  # nothing left to stop


def test_a_child_that_dies_is_reported_with_the_end_of_its_log(
    tmp_path: Path, children: list[Child]
) -> None:
    (tmp_path / "child.out").write_text("from an earlier run\n")
    child = Child(program(tmp_path, "die"))
    children.append(child)
    with pytest.raises(ProcessFailed) as failed:
        node.wait_healthy([child], START_S)
    message = failed.value.message
    assert message.startswith("child exited with status 3 while starting: boom: the config")
    assert str(tmp_path / "child.out") in message and "\n" not in message
    assert "boom: the config is damaged" in failed.value.tail
    assert "from an earlier run" not in (tmp_path / "child.out").read_text()  # emptied


def test_a_child_that_never_answers_is_given_up_on_with_its_log(
    tmp_path: Path, children: list[Child]
) -> None:
    child = Child(program(tmp_path, "silent"))
    children.append(child)
    output = tmp_path / "child.out"
    wait_until(lambda: "listening nowhere" in output.read_text(), START_S, "its output")
    with pytest.raises(ProcessFailed) as failed:
        node.wait_healthy([child], timeout_s=0.5)
    message = failed.value.message
    assert f"child did not answer {child.program.health_url} within" in message
    assert "said last: listening nowhere" in message
    assert "listening nowhere" in failed.value.tail
    assert child.poll() is None  # waiting does not stop it


def test_a_program_started_elsewhere_is_only_asked_its_url(
    tmp_path: Path, children: list[Child]
) -> None:
    child = Child(program(tmp_path, "serve"))
    children.append(child)
    node.wait_healthy([child.program], START_S)
    assert node.health_status(child.program.health_url or "") == 200
    closed = f"http://127.0.0.1:{node.free_port_base(1)}/health"
    assert node.health_status(closed) is None


def test_a_child_ignoring_sigterm_is_killed_with_its_process_group(
    tmp_path: Path, children: list[Child]
) -> None:
    child = Child(program(tmp_path, "stubborn"))
    children.append(child)
    node.wait_healthy([child], START_S)  # serving: its SIGTERM handler is in place
    grandchild = int((tmp_path / "child.out").read_text().split()[1])
    assert node.stop_processes([child], grace_s=0.5) == 1
    assert child.returncode == -signal.SIGKILL
    wait_until(lambda: gone(grandchild), START_S, "the grandchild to be killed with the group")


def test_the_supervisor_stops_all_on_the_way_out_and_names_the_crashed(
    tmp_path: Path,
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt), Supervisor(grace_s=START_S) as supervisor:
        served = supervisor.start(program(tmp_path / "a", "serve", "served"))
        died = supervisor.start(program(tmp_path / "b", "die", "died"))
        supervisor.wait_healthy(["served"], START_S)
        wait_until(lambda: died.poll() is not None, START_S, "the dying child to exit")
        assert supervisor.crashed() == ["died"]
        with pytest.raises(ProcessFailed, match="served is already running"):
            supervisor.start(served.program)
        raise KeyboardInterrupt  # Ctrl-C in the middle
    assert served.returncode == -signal.SIGTERM
    assert supervisor.crashed() == []  # stopped by it, not crashed
    restarted = supervisor.start(served.program)  # a stopped child may start again
    try:
        supervisor.wait_healthy(["served"], START_S)
        supervisor.kill("served")
        assert restarted.returncode == -signal.SIGKILL and supervisor.crashed() == []
    finally:
        supervisor.stop_all(grace_s=0.0)


def test_a_process_found_by_its_pid_is_terminated_or_killed(
    tmp_path: Path, children: list[Child]
) -> None:
    polite = Child(program(tmp_path, "serve", "polite"))
    stubborn = Child(program(tmp_path, "stubborn", "stubborn"))
    children += [polite, stubborn]
    node.wait_healthy([polite, stubborn], START_S)
    assert node.terminate_pid(polite.pid, lambda: polite.poll() is not None, START_S) is False
    assert node.terminate_pid(stubborn.pid, lambda: stubborn.poll() is not None, 0.5) is True
    assert stubborn.wait(START_S) == -signal.SIGKILL
    node.kill_process(stubborn)  # already gone: nothing to do, no error


def test_signals_raise_then_ignore_a_second_and_restore(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGUSR1)
    caught = []
    with node.signals_raise([signal.SIGUSR1], lambda signum: SystemExit(128 + signum)):
        try:
            os.kill(os.getpid(), signal.SIGUSR1)
            wait_until(lambda: False, START_S, "the signal")
        except SystemExit as exc:
            caught.append(exc.code)
            os.kill(os.getpid(), signal.SIGUSR1)  # a second one, during the cleanup
            assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
    assert caught == [128 + signal.SIGUSR1]
    assert signal.getsignal(signal.SIGUSR1) == before


def test_free_port_base_gives_ports_free_for_apis_and_peers() -> None:
    base = node.free_port_base(3)
    for port in (base, base + 2, base + 500, base + 502):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))  # OSError if taken
