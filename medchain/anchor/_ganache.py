"""Ganache (npm, pinned in package.json) as the local verification chain.

It listens on 127.0.0.1 only and runs in its own session, so a Ctrl-C meant for
the devnet's terminal does not kill it before the nodes stop, and stopping it
takes its whole process group. Its chain lives in memory unless a database
directory is given. Ganache 7.9 runs up to the Shanghai hardfork, which is why
Anchor.vy pins that EVM version; it accepts the `finalized` block tag and answers
with the latest block (a dev chain has no reorgs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from medchain.anchor._errors import GanacheError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HARDFORK = "shanghai"  # the EVM version Anchor.vy is compiled for


def ganache_binary() -> Path:
    """The project's Ganache (node_modules, installed by `make install`), else one on PATH."""
    local = PROJECT_ROOT / "node_modules" / ".bin" / "ganache"
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which("ganache")
    if found:
        return Path(found)
    raise GanacheError(
        f"Ganache is not installed (looked for {local} and on PATH); run `make install` "
        "in the medchain checkout (it runs `npm ci`; needs Node.js 18 or newer)"
    )


def start_ganache(
    port: int,
    accounts: list[tuple[str, int]],
    chain_id: int,
    block_time_s: float | None,
    log_path: Path | str,
    db_path: Path | str | None = None,
) -> subprocess.Popen[bytes]:
    """Start Ganache on 127.0.0.1:`port` with the given (private key hex, balance in
    wei) accounts. `block_time_s` None mines each transaction at once; otherwise a
    block every that many seconds (fractions work). Its errors go to `log_path`; its
    start-up banner, which prints every private key, goes nowhere."""
    args = [
        str(ganache_binary()),
        "--server.host=127.0.0.1",
        f"--server.port={port}",
        f"--chain.chainId={chain_id}",
        f"--chain.hardfork={HARDFORK}",
        "--logging.quiet",
    ]
    for key, balance in accounts:
        args.append(f"--wallet.accounts=0x{key.removeprefix('0x')},{balance}")
    if block_time_s is not None:
        args.append(f"--miner.blockTime={block_time_s:g}")
    if db_path is not None:
        args.append(f"--database.dbPath={db_path}")
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )


def wait_ready(url: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `url` answers eth_chainId; GanacheError after `timeout_s`, or at
    once if `proc` has exited."""
    deadline = time.monotonic() + timeout_s
    request = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []})
    while True:
        if proc is not None and proc.poll() is not None:
            raise GanacheError(
                f"Ganache exited with status {proc.returncode} before {url} answered; "
                "see its log (is the port already in use?)"
            )
        try:
            req = urllib.request.Request(
                url, data=request.encode(), headers={"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=1.0) as response:
                if "result" in json.loads(response.read()):
                    return
        except (OSError, ValueError):
            pass  # not listening yet
        if time.monotonic() >= deadline:
            raise GanacheError(
                f"the verification chain at {url} did not answer within {timeout_s:g} s; "
                "see the Ganache log"
            )
        time.sleep(0.1)


def stop_ganache(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """Stop Ganache and its process group: SIGTERM, then SIGKILL after `timeout_s`."""
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)  # its own session: the group id is its pid
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait(timeout=timeout_s)
