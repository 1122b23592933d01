"""`medchain verify`'s wiring: the node through the SDK's HttpChain, the anchors
through an Ethereum client, and the check itself in medchain.anchor (`audit_chain`).

`connect_contract` is the one place the CLI builds an Ethereum client: tests
replace it with a client on eth-tester."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from medchain.anchor import (
    EXIT_ALARM,
    EXIT_OK,
    FINALIZED,
    AnchorSettings,
    AuditResult,
    Finality,
    amend,
    audit_chain,
    keeping_recursion_limit,
    parse_finality,
)
from medchain.client import HttpChain

if TYPE_CHECKING:
    from medchain.anchor import AnchorContract

__all__ = [
    "EXIT_ALARM",
    "EXIT_ERROR",
    "EXIT_OK",
    "AuditResult",
    "amend",
    "audit_node",
    "connect_contract",
    "contract_for",
    "parse_finality",
]

DEFAULT_TIMEOUT_S = 10.0
EXIT_ERROR = 1


def connect_contract(
    rpc_url: str,
    address: str,
    finality: Finality = FINALIZED,
    *,
    eth_chain_id: int | None = None,
    key_file: Path | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> AnchorContract:
    """An Anchor contract client over HTTP; it loads `key_file` (an eth.key) only to
    send. Tests monkeypatch this function to hand out a client on eth-tester."""
    with keeping_recursion_limit():
        from web3 import HTTPProvider, Web3  # here: importing web3 takes most of a second

    from medchain.anchor import AnchorContract, load_eth_key

    provider = HTTPProvider(
        rpc_url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None
    )
    account = None if key_file is None else load_eth_key(key_file)
    return AnchorContract(
        Web3(provider), address, account, finality=finality, eth_chain_id=eth_chain_id
    )


def contract_for(
    settings: AnchorSettings, home: Path | None = None, *, send: bool = False
) -> AnchorContract:
    """The client a node home's anchor settings name (with its eth.key if `send`)."""
    return connect_contract(
        settings.rpc_url,
        settings.contract,
        settings.finality,
        eth_chain_id=settings.eth_chain_id,
        key_file=settings.key_path(home or Path.cwd()) if send else None,
    )


def audit_node(
    url: str,
    *,
    eth_url: str | None = None,
    contract: str | None = None,
    finality: Finality | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    transport: httpx.BaseTransport | None = None,
) -> AuditResult:
    """Check the node at `url` against the anchors of its chain (`audit_chain`).
    `transport` replaces the network to the node (tests)."""
    with keeping_recursion_limit():
        import web3  # noqa: F401  # loading the client is the command's start-up, not the check

    def connect(rpc_url: str, address: str, rule: Finality) -> AnchorContract:
        return connect_contract(rpc_url, address, rule, timeout_s=timeout_s)

    with HttpChain(url, timeout_s, transport=transport) as node:
        return audit_chain(node, connect, eth_url=eth_url, contract=contract, finality=finality)
