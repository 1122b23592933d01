"""A node process on a disk that fills up: it stops cleanly (one line in its log and
on stderr that names the full path, its free bytes and what to do; its own exit
status; no traceback) and, started again once there is room, it goes on from its
stored tip with every transaction it had committed where it was."""

from __future__ import annotations

import errno
import io
import json
import logging
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from medchain.node import (
    EXIT_DISK_FULL,
    LOG_FILE,
    PID_FILE,
    RESERVE_FILE,
    Node,
    NodeApi,
    NodeConfig,
    create_devnet,
    free_port_base,
    read_config,
    run_node_process,
)
from medchain.store import disk_full

ROOT = Path(__file__).resolve().parents[2]
UNSHARE = ("unshare", "--user", "--map-root-user", "--mount")
"""A mount namespace of its own, where mounting a tmpfs needs no root."""
SMALL = 3 * 2**20
"""The tmpfs the node starts on: room for its files and a few dozen blocks."""
LARGE = 64 * 2**20
"""The same tmpfs once space is freed."""
SCENARIO_S = 1_800.0
"""The whole scenario (two node starts, the feeding) on a very busy machine."""


@pytest.mark.slow
def test_a_full_disk_stops_the_node_cleanly_and_a_restart_loses_nothing(
    tmp_path: Path,
) -> None:
    scenario = [sys.executable, "-m", "tests.node.diskfull_run", str(tmp_path)]
    run = subprocess.run(
        [*UNSHARE, *scenario, str(SMALL), str(LARGE)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=SCENARIO_S,
        check=False,
    )
    assert run.returncode == 0, f"the scenario failed:\n{run.stdout}\n{run.stderr}"
    facts = json.loads((tmp_path / "facts.json").read_text())

    assert facts["exit_status"] == EXIT_DISK_FULL
    (line,) = facts["stderr"].splitlines()
    assert line.startswith(f"error (disk_full): the disk holding {tmp_path / 'disk'}/")
    assert " bytes free): " in line
    assert line.endswith(
        "Free space on that disk, then start the node again; it carries on from what it stored"
    )
    stops = [entry for entry in facts["log"].splitlines() if " ERROR " in entry]
    assert len(stops) == 1 and stops[0].endswith(line.removeprefix("error (disk_full): "))
    assert "Traceback" not in facts["log"]

    committed = facts["committed"]
    assert committed, "nothing committed before the disk filled"
    assert facts["after_restart"] == committed  # same height, same state root
    stored_tip = max(height for height, _ in committed.values())
    assert facts["tip_at_restart"] >= stored_tip
    assert facts["height_after"] > facts["tip_at_restart"]


@pytest.fixture
def node_home(tmp_path: Path) -> Iterator[Path]:
    """A one-validator home; the root logger as it was once the node process's
    logging (which replaces it) is done."""
    base = free_port_base(1)
    devnet = create_devnet(tmp_path, 1, "pbft", api_port=base, p2p_port=base + 500)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield devnet.nodes[0].home
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


class FullDiskApi:
    """An API whose start finds the disk full (as an upload's could)."""

    def __init__(self, home: Path) -> None:
        self.home = home

    @property
    def url(self) -> str:
        return "http://127.0.0.1:1"

    async def start(self) -> None:
        raise disk_full(self.home / "blobs", "the bodies")

    async def stop(self) -> None:
        pass


def full_disk_api(home: Path) -> Callable[[Node, NodeConfig], NodeApi]:
    return lambda node, config: FullDiskApi(home)


def test_a_full_disk_exits_with_its_own_status_and_says_so_once(
    node_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        run_node_process(node_home, read_config(node_home), full_disk_api(node_home))
    assert exited.value.code == EXIT_DISK_FULL
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith(f"error (disk_full): the disk holding {node_home / 'blobs'} is full")
    log = (node_home / LOG_FILE).read_text()
    (stop,) = [entry for entry in log.splitlines() if " ERROR " in entry]
    assert stop.endswith(line.removeprefix("error (disk_full): "))
    assert "Traceback" not in log
    assert not (node_home / PID_FILE).exists()
    assert not (node_home / RESERVE_FILE).exists()


def test_no_room_for_the_pid_file_is_a_full_disk(
    node_home: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_text = Path.write_text

    def full(path: Path, text: str, *args: Any, **kwargs: Any) -> int:
        if path.name == PID_FILE:
            path.touch()
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return write_text(path, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(SystemExit) as exited:
        run_node_process(node_home, read_config(node_home), full_disk_api(node_home))
    assert exited.value.code == EXIT_DISK_FULL
    (line,) = capsys.readouterr().err.splitlines()
    assert "the node's log or pid file was not written" in line
    assert not (node_home / PID_FILE).exists()


class FullStream(io.StringIO):
    def write(self, text: str) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_under_stderr_too_still_exits_with_its_status(
    node_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A devnet's node prints to node.out in its home: on the disk that is full."""
    monkeypatch.setattr(sys, "stderr", FullStream())
    with pytest.raises(SystemExit) as exited:
        run_node_process(node_home, read_config(node_home), full_disk_api(node_home))
    assert exited.value.code == EXIT_DISK_FULL
    assert "the bodies was not written" in (node_home / LOG_FILE).read_text()
