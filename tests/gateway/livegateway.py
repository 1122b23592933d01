"""A `medchain gateway --home` process for the multi-process gateway tests: its home set
up by `medchain gateway init` on a free port and registered on chain by a hospital, and
the process, stopped with SIGTERM (its log printed if the test fails)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from medchain.cli import app
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, load_keys
from medchain.gateway._config import GATEWAY_KEY_FILE
from medchain.node import free_port_base

PROVE = [sys.executable, "-m", "medchain.cli", "reading", "prove"]
"""`medchain reading prove`, the command a patient would run."""


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
                proc.wait(60)  # it commits what it holds first: slow on a busy machine
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()
