"""Several calls of one account in one submission: successive nonces, one wait."""

from __future__ import annotations

from collections.abc import Sequence

from medchain.client._account import AccountCore
from medchain.types import MedchainError


def submit_all(client: AccountCore, method: str, calls: Sequence[object]) -> None:
    """Send the calls with successive nonces in one submission; raise the first error."""
    if not calls:
        return
    nonce = client.chain.account(client.address).nonce
    txs = [client.build(method, args, nonce=nonce + i) for i, args in enumerate(calls)]
    for outcome in client.chain.submit_many(txs):
        if isinstance(outcome, MedchainError):
            raise outcome
