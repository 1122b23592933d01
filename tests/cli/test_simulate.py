"""`medchain devices simulate --per-patient N --prove`, in a few seconds: a node's API
served by uvicorn over an in-memory chain (FakeNode commits each transaction at once) and
a gateway served in a thread against it over HTTP. A hospital's fleet gets one patient
per N devices; --prove checks every accepted reading against the chain and exits 2 when
one is not proven; a rerun of the same fleet is not taken for a replay; the option errors
are refused before anything is sent. (The fleet's enrolment: tests/gateway/test_fleet.py.)"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from medchain.app import Role
from medchain.cli import app
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, format_address, save_keys
from medchain.gateway import DeviceKind, SimulatedDevice, _resend, stream_fleet
from medchain.gateway import _proofs as gw
from medchain.gateway._config import GatewayConfig
from medchain.gateway._fleet import patient_keys
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import create_gateway_app
from medchain.gateway._service import GatewayService
from medchain.node import free_port_base
from tests.gateway.test_fleet import FleetChain, fleet_chain  # noqa: F401  (the fixture)
from tests.node.netharness import wait_for

runner = CliRunner()


@dataclass(frozen=True)
class District:
    node: str
    gateway: str
    chain: HttpChain
    hospital: AccountKeys
    hospital_key: Path
    patient_key: Path


@contextlib.contextmanager
def _gateway(keys: AccountKeys, node: str, home: Path) -> Iterator[str]:
    port = free_port_base(1)
    config = GatewayConfig(node_url=node, port=port, batch_max_delay_ms=100)
    with HttpChain(node) as chain:
        service = GatewayService(keys, chain, ReadingIndex(home / "index.sqlite"), config)
        server = uvicorn.Server(
            uvicorn.Config(
                create_gateway_app(service),
                host="127.0.0.1",
                port=port,
                log_config=None,
                access_log=False,
            )
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        try:
            wait_for(lambda: server.started, 120, "the gateway to serve")
            yield f"http://127.0.0.1:{port}"
        finally:
            server.should_exit = True
            thread.join(20)


@pytest.fixture
def district(fleet_chain: FleetChain, tmp_path: Path) -> Iterator[District]:  # noqa: F811
    """The fleet tests' served chain and hospital, with a patient and a gateway."""
    chain = fleet_chain.chain
    hospital = MedchainClient(fleet_chain.hospital, chain)
    patient = MedchainClient(AccountKeys.generate(), chain)
    patient.register(Role.PATIENT, "Jane Roe")
    gateway_keys = AccountKeys.generate()
    hospital.register_gateway(gateway_keys.address, "district edge")
    save_keys(tmp_path / "hospital.key", hospital.keys)
    save_keys(tmp_path / "patient.key", patient.keys)
    with _gateway(gateway_keys, chain.url, tmp_path) as url:
        yield District(
            chain.url,
            url,
            chain,
            hospital.keys,
            tmp_path / "hospital.key",
            tmp_path / "patient.key",
        )


def _simulate(d: District, *args: str, key: Path | None = None) -> Any:
    return runner.invoke(
        app,
        [
            *("devices", "simulate", "--key", str(key or d.hospital_key)),
            *("--rate", "600", "--readings", "2", "--gateway", d.gateway, "--node", d.node),
            *args,
        ],
        env={"COLUMNS": "200"},
    )


def test_per_patient_fleet_proven_against_the_chain(
    district: District, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = _simulate(district, "--count", "6", "--per-patient", "3", "--seed", "5", "--prove")
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "12 readings sent" in out and "12 accepted, 0 refused" in out
    assert "honest devices: 6 active" in out
    assert "12/12 readings proven against the chain" in out
    for i in range(2):  # two patients, three devices each, of three kinds
        devices = district.chain.devices_of(patient_keys(5, i).address)
        assert len(devices) == 3 and len({d.kind for d in devices}) == 3
    assert district.chain.identity(patient_keys(5, 2).address) is None

    # A proof that does not hold (here: the chain's root is not the gateway's) is
    # reported with the reading and its reason, and the command exits 2.
    genuine = gw.check_reading_proof
    bad: list[bytes] = []

    def one_wrong(http: Any, chain: Any, rid: bytes, auth: Any = None) -> gw.ProofCheck:
        check = genuine(http, chain, rid, auth)
        if bad:
            return check
        bad.append(rid)
        return replace(check, chain_root=b"\x02" * 32)

    monkeypatch.setattr(gw, "check_reading_proof", one_wrong)
    failed = _simulate(district, "--count", "2", "--seed", "6", "--prove")
    assert failed.exit_code == 2, failed.output
    out = " ".join(failed.output.split())
    assert "3/4 readings proven against the chain: 1 not proven" in out
    assert f"{bad[0].hex()}: the gateway's root differs from the batch root on chain" in out


def test_a_rerun_of_the_same_fleet_is_not_a_replay(district: District) -> None:
    """One seed, one fleet: the second run reuses the devices on chain, and their
    sequence numbers go on above the first run's, so nothing is refused or struck."""
    for _ in range(2):
        result = _simulate(district, "--count", "3", "--seed", "8")
        assert result.exit_code == 0, result.output
        out = " ".join(result.output.split())
        assert "6 accepted, 0 refused" in out and "honest devices: 3 active" in out
    for i in range(3):
        devices = district.chain.devices_of(patient_keys(8, i).address)
        assert len(devices) == 1 and devices[0].strikes == 0


def test_per_patient_goes_with_a_hospital_key(district: District) -> None:
    result = _simulate(district, "--count", "2", "--per-patient", "2", key=district.patient_key)
    assert result.exit_code == 1, result.output
    assert "devices per patient go with a hospital's key" in " ".join(result.output.split())


def test_an_unreachable_gateway_is_counted_with_the_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_resend, "RESEND_FIRST_WAIT_S", 0.001)
    device = SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)))
    closed = f"http://127.0.0.1:{free_port_base(1)}"  # nothing listens there
    run = asyncio.run(stream_fleet(closed, [device], rate_per_minute=600, readings=2))
    assert run.refused == {"unreachable": 2} and run.sent == 2
    assert list(run.unreachable) == ["ConnectError: All connection attempts failed"]
    # each sent again a bounded number of times before it counts as unreachable
    assert run.resent == {
        "ConnectError: All connection attempts failed": 2 * (_resend.RESEND_ATTEMPTS - 1)
    }


def test_streamed_readings_carry_the_time_they_are_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    """A device reading 600 times a minute stamps its readings 100 ms apart, from when it
    starts, not a minute apart from whenever it was made."""
    monkeypatch.setattr(_resend, "RESEND_FIRST_WAIT_S", 0.001)
    device = SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)), start_ms=0)
    closed = f"http://127.0.0.1:{free_port_base(1)}"  # nothing listens: readings are still made
    before = time.time_ns() // 1_000_000
    asyncio.run(stream_fleet(closed, [device], rate_per_minute=600, readings=3))
    after = time.time_ns() // 1_000_000
    assert device.interval_ms == 100
    assert before <= device.now_ms - 3 * 100 <= after  # the first reading: taken when sent


def test_per_patient_bounds(tmp_path: Path) -> None:
    key = str(tmp_path / "none.key")  # never read: typer refuses the values first
    for value in ("0", "65", "x"):
        result = runner.invoke(app, ["devices", "simulate", "--key", key, "--per-patient", value])
        assert result.exit_code == 2, result.output
        assert "--per-patient" in result.output


def test_simulate_transport_options_are_checked_first(tmp_path: Path) -> None:
    key = str(tmp_path / "none.key")  # never read: the options are refused before
    runner = CliRunner()
    for extra, says in [
        (["--broker", "127.0.0.1:1884"], "--broker and --topic-prefix go with --transport mqtt"),
        (["--transport", "mqtt", "--broker", "host:0"], "expected HOST:PORT"),
        (["--transport", "mqtt", "--topic-prefix", "a/#"], "--topic-prefix"),
    ]:
        result = runner.invoke(app, ["devices", "simulate", "--key", key, *extra])
        assert result.exit_code == 1, result.output
        assert says in " ".join(result.output.split()), result.output
    result = runner.invoke(app, ["devices", "simulate", "--key", key, "--transport", "udp"])
    assert result.exit_code == 2
