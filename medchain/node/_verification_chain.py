"""A devnet's own verification chain: Ganache on 127.0.0.1 with the anchor contract.

On the first start the devnet's deployer account deploys the contract and registers
the devnet's chain id with every validator's Ethereum address as a submitter; each
node's config.json then gets its `anchor` section. Ganache keeps its database in the
devnet home, so anchors survive a restart of the devnet."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from medchain.anchor import (
    ETH_KEY_FILE,
    AnchorSettings,
    keeping_recursion_limit,
    start_ganache,
    wait_ready,
)
from medchain.node._config import read_config, write_config
from medchain.types import MedchainError

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

VERIFICATION_DIR = "verification-chain"
DEPLOYER_KEY_FILE = "deployer.key"
CONTRACT_FILE = "contract.json"
GANACHE_PID_FILE = "ganache.pid"
ETH_FUNDS = 10**24
"""Wei given to the deployer and each validator: anchoring never runs dry on a devnet."""


@dataclass(frozen=True, slots=True)
class VerificationChain:
    """Where a devnet's Ganache listens and how its anchors become final."""

    port: int
    eth_chain_id: int = 1337
    block_time_ms: int = 1_000
    """Ganache mines a block this often, so confirmations accrue without traffic."""
    confirmations: int = 2
    poll_ms: int = 5_000
    """How often nodes read the anchors and run their passive check."""

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def to_json(self) -> dict[str, int]:
        return {
            "port": self.port,
            "eth_chain_id": self.eth_chain_id,
            "block_time_ms": self.block_time_ms,
            "confirmations": self.confirmations,
            "poll_ms": self.poll_ms,
        }

    @classmethod
    def from_json(cls, doc: dict[str, int]) -> VerificationChain:
        return cls(**{k: int(v) for k, v in doc.items()})


class VerificationChainError(MedchainError):
    code = "verification_chain"


def prepare(home: Path, validator_homes: list[Path]) -> None:
    """At devnet creation: an Ethereum key for the deployer and for each validator."""
    from medchain.anchor import new_eth_key

    directory = home / VERIFICATION_DIR
    directory.mkdir(parents=True, exist_ok=True)
    new_eth_key(directory / DEPLOYER_KEY_FILE)
    for node_home in validator_homes:
        new_eth_key(node_home / ETH_KEY_FILE)


def start(
    home: Path,
    chain: VerificationChain,
    chain_id: str,
    node_homes: list[Path],
    validator_homes: list[Path],
    timeout_s: float = 30.0,
) -> int:
    """Start Ganache (if it is not running), deploy and register the anchor contract
    on first use, and write each node's `anchor` section. Returns Ganache's pid."""
    from medchain.anchor import load_eth_key

    directory = home / VERIFICATION_DIR
    deployer = load_eth_key(directory / DEPLOYER_KEY_FILE)
    validators = [load_eth_key(h / ETH_KEY_FILE) for h in validator_homes]
    pid = running_pid(home)
    if pid is None:
        accounts = [(a.key.hex(), ETH_FUNDS) for a in (deployer, *validators)]
        proc = start_ganache(
            chain.port,
            accounts,
            chain.eth_chain_id,
            chain.block_time_ms / 1000,
            directory / "ganache.log",
            db_path=directory / "db",
        )
        pid = proc.pid
        (directory / GANACHE_PID_FILE).write_text(f"{pid}\n")
        try:
            wait_ready(chain.rpc_url, timeout_s, proc)
        except BaseException:
            stop(home)
            raise
    contract = _deployed(directory, chain, chain_id, deployer, [v.address for v in validators])
    settings = AnchorSettings(
        rpc_url=chain.rpc_url,
        eth_chain_id=chain.eth_chain_id,
        contract=contract,
        finality=chain.confirmations,
        poll_ms=chain.poll_ms,
    )
    for node_home in node_homes:
        config = read_config(node_home)
        extra = {**config.extra, "anchor": settings.to_json()}
        write_config(node_home, replace(config, extra=extra))
    return pid


def _deployed(
    directory: Path,
    chain: VerificationChain,
    chain_id: str,
    deployer: LocalAccount,
    submitters: list[str],
) -> str:
    """The contract's address, deploying and registering it the first time."""
    with keeping_recursion_limit():
        from web3 import HTTPProvider, Web3

    from medchain.anchor import AnchorContract

    record = directory / CONTRACT_FILE
    if record.exists():
        return str(json.loads(record.read_text())["address"])
    w3 = Web3(HTTPProvider(chain.rpc_url, request_kwargs={"timeout": 30}))
    address = AnchorContract.deploy(w3, deployer)
    contract = AnchorContract(w3, address, deployer, eth_chain_id=chain.eth_chain_id)
    contract.register_chain(chain_id, submitters)
    record.write_text(json.dumps({"address": address, "chain_id": chain_id}, indent=2) + "\n")
    return address


def running_pid(home: Path) -> int | None:
    path = home / VERIFICATION_DIR / GANACHE_PID_FILE
    try:
        pid = int(path.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def stop(home: Path, timeout_s: float = 10.0) -> bool:
    """Stop the devnet's Ganache (its whole process group); True if one was running."""
    pid = running_pid(home)
    (home / VERIFICATION_DIR / GANACHE_PID_FILE).unlink(missing_ok=True)
    if pid is None:
        return False
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return True
