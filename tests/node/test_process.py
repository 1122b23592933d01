"""A node process on a disk that fills up: it stops cleanly (one line in its log and
on stderr that names the full path, its free bytes and what to do; its own exit
status; no traceback) and, started again once there is room, it goes on from its
stored tip with every transaction it had committed where it was."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from medchain.node import EXIT_DISK_FULL

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
