"""What MedchainClient's mixins use of the client itself, declared once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medchain.client._backend import ChainBackend
    from medchain.crypto import AccountKeys
    from medchain.types import Receipt, Tx


class AccountCore:
    """The base of MedchainClient's mixins (consents, erasure, recovery, disclosures,
    organisations): the account's keys and chain, and how it signs and sends a
    transaction. MedchainClient implements them; here they are declared for the type
    checker only, so that each mixin does not repeat them."""

    if TYPE_CHECKING:
        keys: AccountKeys
        chain: ChainBackend

        @property
        def address(self) -> bytes: ...

        def build(
            self, method: str, args: object, fee: int | None = None, nonce: int | None = None
        ) -> Tx: ...

        def send(self, method: str, args: object, fee: int | None = None) -> Receipt: ...

        def send_with_body(
            self, method: str, args: object, body: bytes, fee: int | None = None
        ) -> Receipt: ...
