"""The gateway as it runs: a devnet of node processes, a `medchain gateway --home` process
against node0, ~100 simulated devices and 2 misbehaving ones over HTTP. No honest reading
is lost, every one is provable against the chain, and the misbehaving devices end
penalised on chain while the honest ones stay active."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from medchain.app import Batch, DeviceState, Role
from medchain.cli import app
from medchain.cli._fleet_enrol import enrol_fleet
from medchain.cli._fleet_stream import stream_fleet, wait_committed
from medchain.cli._gateway import check_reading
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import load_keys
from medchain.gateway import MisbehavingDevice
from medchain.gateway._config import GATEWAY_KEY_FILE
from medchain.node import free_port_base
from tests.node.netharness import live_net, wait_for

HONEST = 100
BAD = 2
PROVE = [sys.executable, "-m", "medchain.cli", "reading", "prove"]
READINGS = 8  # per device, one a second: enough strike windows to restrict a bad device


@contextlib.contextmanager
def gateway_process(home: Path) -> Iterator[subprocess.Popen[bytes]]:
    log = (home / "gateway.log").open("wb")
    cmd = [sys.executable, "-m", "medchain.cli", "gateway", "--home", str(home)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    except BaseException:
        print("--- gateway.log (tail) ---\n" + (home / "gateway.log").read_text()[-3000:])
        raise
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


@pytest.mark.slow
def test_gateway_live(tmp_path: Path) -> None:
    started = time.monotonic()
    with live_net(tmp_path / "net", 4, "pbft") as net:
        net.start()
        node = net.url(net.names[0])
        chain = HttpChain(node)
        (hospital_keys,) = net.fund(1)
        MedchainClient(hospital_keys, chain).register(Role.INSTITUTION, "St Elsewhere")

        home = tmp_path / "gw"
        port = free_port_base(1)
        init = CliRunner().invoke(
            app, ["gateway", "init", "--home", str(home), "--node", node, "--port", str(port)]
        )
        assert init.exit_code == 0, init.output
        gateway_keys = load_keys(home / GATEWAY_KEY_FILE)
        MedchainClient(hospital_keys, chain).register_gateway(gateway_keys.address, "ward 3")
        url = f"http://127.0.0.1:{port}"

        with gateway_process(home) as proc:
            wait_for(lambda: httpx.get(f"{url}/v1/health").status_code == 200, 30, "the gateway")
            devices = enrol_fleet(chain, hospital_keys, HONEST + BAD, BAD, seed=7)
            enrolled = time.monotonic()
            run = asyncio.run(stream_fleet(url, devices, rate_per_minute=60, readings=READINGS))
            wait_committed(url)
            honest = [d for d in devices if not isinstance(d, MisbehavingDevice)]
            bad = [d for d in devices if isinstance(d, MisbehavingDevice)]
            print(
                f"enrolled {len(devices)} devices in {enrolled - started:.1f} s; sent "
                f"{run.sent} readings in {run.elapsed_s:.1f} s; refused: {dict(run.refused)}"
            )

            # No honest reading refused or lost: each is committed and provable.
            assert all(len(run.accepted.get(d.keys.address, [])) == READINGS for d in honest)
            with httpx.Client(base_url=url, timeout=10.0) as http:
                ids = [rid for d in honest for rid in run.accepted[d.keys.address]]
                seen: dict[bytes, Batch | None] = {}
                for rid in ids:
                    check = check_reading(http, _CachedBatches(chain, seen), rid)
                    assert check.verified, (rid.hex(), check.reason)
            assert len(ids) == HONEST * READINGS
            for rid in ids[:: len(ids) // 3][:3]:  # the command a patient would run
                proved = subprocess.run(
                    [*PROVE, rid.hex(), "--gateway", url, "--node", node],
                    capture_output=True,
                    text=True,
                    timeout=30,
                )
                assert proved.returncode == 0 and "verified" in proved.stdout, proved.stderr

            # A gateway strikes a device at most once per offence per batch window, and a
            # window of 100 patients' bundles takes a while: the bad devices keep at it
            # (bounded) until the chain penalises them.
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not all(_penalised(chain, d) for d in bad):
                asyncio.run(stream_fleet(url, bad, rate_per_minute=60, readings=2))
                wait_committed(url)
            height = chain.height
            for d in bad:
                device = chain.device(d.keys.address)
                assert device is not None
                state = device.state_at(height)
                print(f"{d.mode.value} device: {state.value}, {device.strikes} strikes")
                assert state in (DeviceState.RESTRICTED, DeviceState.BANNED), d.mode
            for h in honest:
                device = chain.device(h.keys.address)
                assert device is not None and device.state_at(height) is DeviceState.ACTIVE
            os.kill(proc.pid, signal.SIGTERM)
            assert proc.wait(20) == 0
        chain.close()
    print(f"live gateway test: {time.monotonic() - started:.1f} s")


def _penalised(chain: HttpChain, device: MisbehavingDevice) -> bool:
    found = chain.device(device.keys.address)
    return found is not None and found.state_at(chain.height) is not DeviceState.ACTIVE


class _CachedBatches:
    """The chain's batches, read once each (a batch holds many readings)."""

    def __init__(self, chain: HttpChain, seen: dict[bytes, Batch | None]) -> None:
        self.chain = chain
        self.seen = seen

    def batch(self, batch_id: bytes) -> Batch | None:
        if batch_id not in self.seen:
            self.seen[batch_id] = self.chain.batch(batch_id)
        return self.seen[batch_id]
