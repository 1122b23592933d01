"""Several calls of one account in one submission: successive nonces, one wait."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from medchain.types import MedchainError

if TYPE_CHECKING:
    from medchain.client._backend import ChainBackend
    from medchain.types import Tx


class Builder(Protocol):
    """What signs the calls: a MedchainClient."""

    chain: ChainBackend

    @property
    def address(self) -> bytes: ...

    def build(
        self, method: str, args: object, fee: int | None = None, nonce: int | None = None
    ) -> Tx: ...


def submit_all(client: Builder, method: str, calls: Sequence[object]) -> None:
    """Send the calls with successive nonces in one submission; raise the first error."""
    if not calls:
        return
    nonce = client.chain.account(client.address).nonce
    txs = [client.build(method, args, nonce=nonce + i) for i, args in enumerate(calls)]
    for outcome in client.chain.submit_many(txs):
        if isinstance(outcome, MedchainError):
            raise outcome
