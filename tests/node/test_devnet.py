"""The devnet's files and the processes found by their pid files: opening or creating
a devnet, one on free ports, the nodes known from URLs, and stopping a process that
another one started (as `devnet down` does) with a stand-in for a node process."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from medchain.node import (
    DEVELOPMENT_RECOVERY_DELAY_MS,
    PID_FILE,
    Devnet,
    DevnetError,
    NetNode,
    changed_params,
    create_devnet,
    development_params,
    given_nodes,
    local_devnet,
    open_devnet,
    read_pid,
    stop_node,
)
from medchain.types import ChainParams

STOP_S = 120.0


def test_open_devnet_creates_once_then_loads(tmp_path: Path) -> None:
    def create(validators: int) -> Callable[[], Devnet]:
        return lambda: create_devnet(tmp_path, validators, "pbft", api_port=18_000)

    devnet, created = open_devnet(tmp_path, create(2))
    assert created and [n.api_url for n in devnet.nodes][1] == "http://127.0.0.1:18001"
    again, created = open_devnet(tmp_path, create(4))
    assert not created and again == devnet  # as it is, whatever was asked


def test_a_devnet_past_the_last_port_is_refused(tmp_path: Path) -> None:
    with pytest.raises(DevnetError, match="node 3 would listen on port 65536"):
        create_devnet(tmp_path, 3, "pbft", observers=1, api_port=65_533, p2p_port=9_600)
    assert not any(tmp_path.iterdir())


def test_a_local_devnet_listens_on_free_ports(tmp_path: Path) -> None:
    devnet = local_devnet(tmp_path, 2, "afbft", chain_id="medchain-x", observers=1)
    ports = [int(n.api_url.rsplit(":", 1)[1]) for n in devnet.nodes]
    assert ports == [ports[0], ports[0] + 1, ports[0] + 2]
    assert [n.p2p_port for n in devnet.nodes] == [p + 500 for p in ports]
    assert devnet.genesis().chain_id == "medchain-x" and len(devnet.validators) == 2


def test_changed_params_names_what_differs_from_the_defaults() -> None:
    params = dataclasses.replace(ChainParams(), consensus="dpos", device_strikes_ban=99)
    assert changed_params(params) == ["device_strikes_ban"]


def test_given_nodes_completes_a_devnet_from_its_first_url(tmp_path: Path) -> None:
    devnet = local_devnet(tmp_path, 3, "pbft", chain_id="medchain-x")
    second = devnet.nodes[1]
    nodes, found = given_nodes([second.api_url + "/"], tmp_path)
    assert found == devnet
    assert nodes[0] == NetNode("node1", second.api_url, second.home)
    assert sorted(n.name for n in nodes) == ["node0", "node1", "node2"]
    elsewhere = "http://10.0.0.9:8600"
    assert given_nodes([elsewhere], tmp_path) == ([NetNode(elsewhere, elsewhere, None)], None)
    assert given_nodes([elsewhere], tmp_path / "none")[1] is None


@pytest.fixture
def stand_in(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[bytes]]:
    """A process whose command line names `node` and the home, as a node's does, with
    its pid in the home's pid file; it ignores SIGTERM if asked."""
    ignore = "signal.signal(signal.SIGTERM, signal.SIG_IGN); " if request.param else ""
    code = f"import signal, sys; {ignore}print('ready', flush=True); signal.pause()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "node", str(tmp_path)], stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
    (tmp_path / PID_FILE).write_text(f"{proc.pid}\n")
    yield proc
    proc.kill()
    proc.wait(STOP_S)


@pytest.mark.parametrize("stand_in", [False], indirect=True)
def test_stop_node_terminates_the_process_of_the_pid_file(
    tmp_path: Path, stand_in: subprocess.Popen[bytes]
) -> None:
    assert read_pid(tmp_path) == stand_in.pid
    assert stop_node(tmp_path, timeout_s=STOP_S)
    assert stand_in.wait(STOP_S) == -signal.SIGTERM
    assert read_pid(tmp_path) is None  # its exited process no longer counts
    assert not stop_node(tmp_path)


@pytest.mark.parametrize("stand_in", [True], indirect=True)
def test_stop_node_kills_one_that_ignores_sigterm_and_drops_its_pid_file(
    tmp_path: Path, stand_in: subprocess.Popen[bytes]
) -> None:
    assert stop_node(tmp_path, timeout_s=0.5)
    assert stand_in.wait(STOP_S) == -signal.SIGKILL
    assert not (tmp_path / PID_FILE).exists()


def test_a_development_chain_waits_seconds_for_a_recovery_unless_told_otherwise() -> None:
    assert ChainParams().recovery_min_delay_ms == 24 * 3_600_000
    assert development_params(ChainParams()).recovery_min_delay_ms == (
        DEVELOPMENT_RECOVERY_DELAY_MS
    )
    chosen = ChainParams(recovery_min_delay_ms=3_600_000)
    assert development_params(chosen) == chosen
