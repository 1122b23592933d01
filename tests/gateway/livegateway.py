"""A `medchain gateway --home` process for the multi-process gateway tests: its home set
up by `medchain gateway init` on a free port and registered on chain by a hospital, and
the process, stopped with SIGTERM (its log printed if the test fails)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from medchain.cli import app
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, load_keys, save_keys
from medchain.gateway import SimulatedDevice
from medchain.gateway._config import GATEWAY_KEY_FILE
from medchain.gateway._fleet import patient_keys
from medchain.node import Child, Program, Supervisor, free_port_base

PROVE = [sys.executable, "-m", "medchain.cli", "reading", "prove"]
DISCLOSURES = [sys.executable, "-m", "medchain.cli", "record", "disclosures"]
"""`medchain reading prove`, the command a patient would run (with `--key`)."""


def patient_key_file(device: SimulatedDevice, seed: int, count: int, where: Path) -> str:
    """The key file of a simulated fleet's patient of `device` (one of `count` patients
    enrolled with `seed`), written to `where`: what a patient proves a reading with."""
    keys = next(
        k for k in (patient_keys(seed, i) for i in range(count)) if k.address_text == device.patient
    )
    path = where / f"{keys.address_text}.key"
    save_keys(path, keys)
    return str(path)


@dataclass(frozen=True)
class GatewayHome:
    home: Path
    url: str
    keys: AccountKeys


def gateway_home(
    home: Path, chain: HttpChain, hospital: AccountKeys, label: str = "ward 3"
) -> GatewayHome:
    """`medchain gateway init` against the chain's node, on a free port; the hospital
    registers the gateway on chain."""
    port = free_port_base(1)
    init = CliRunner().invoke(
        app, ["gateway", "init", "--home", str(home), "--node", chain.url, "--port", str(port)]
    )
    assert init.exit_code == 0, init.output
    keys = load_keys(home / GATEWAY_KEY_FILE)
    MedchainClient(hospital, chain).register_gateway(keys.address, label)
    return GatewayHome(home, f"http://127.0.0.1:{port}", keys)


@contextlib.contextmanager
def gateway_process(home: Path) -> Iterator[Child]:
    """The gateway of `home` as a process; stopped with SIGTERM on the way out (given a
    minute: it commits what it holds first, slow on a busy machine), its log printed if
    the test fails."""
    argv = (sys.executable, "-m", "medchain.cli", "gateway", "--home", str(home))
    with Supervisor(grace_s=60) as supervisor:
        program = Program("gateway", argv, home / "gateway.log", own_session=False)
        try:
            yield supervisor.start(program)
        except BaseException:
            print(program.tail())
            raise
