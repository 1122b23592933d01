"""An in-process Ethereum (eth-tester on py-evm) with funded local accounts."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3
from web3.types import Wei

from medchain.anchor import AnchorContract

FUNDS_WEI = 10**20


@dataclass
class Chain:
    w3: Web3
    accounts: list[LocalAccount]
    """Funded accounts that sign locally, as a node's eth.key does."""

    def mine(self, blocks: int) -> None:
        provider = self.w3.provider
        assert isinstance(provider, EthereumTesterProvider) and provider.ethereum_tester
        provider.ethereum_tester.mine_blocks(blocks)


def eth_tester_chain(accounts: int = 4) -> Chain:
    w3 = Web3(EthereumTesterProvider())
    funded = [Account.create() for _ in range(accounts)]
    for account in funded:
        tx = w3.eth.send_transaction(
            {"from": w3.eth.accounts[0], "to": account.address, "value": Wei(FUNDS_WEI)}
        )
        w3.eth.wait_for_transaction_receipt(tx)
    return Chain(w3, funded)


@pytest.fixture(scope="module")
def chain() -> Iterator[Chain]:
    yield eth_tester_chain()


@pytest.fixture(scope="module")
def contract_address(chain: Chain) -> str:
    """One Anchor contract per test module; tests keep apart by chain id."""
    return AnchorContract.deploy(chain.w3, chain.accounts[0])
