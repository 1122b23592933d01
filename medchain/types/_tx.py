"""Signed transactions: who (an Ed25519 public key), what (a contract method with
canonically encoded arguments), replay protection (chain id + per-account nonce)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from medchain.types._codec import encode
from medchain.types._hashing import tagged_hash

TX_SIGNING_DOMAIN = b"medchain/tx-signature/v1\x00"


@dataclass(frozen=True, slots=True)
class Tx:
    chain_id: str
    nonce: int
    sender: bytes
    """Ed25519 public key (32 bytes) of the signer; the account address derives from it."""
    fee: int
    method: str
    """Contract method, `contract.action` (e.g. `records.create`)."""
    args: bytes
    """Canonical encoding of the method's argument dataclass."""
    signature: bytes = b""

    def unsigned(self) -> Tx:
        return dataclasses.replace(self, signature=b"")

    def signing_bytes(self) -> bytes:
        """What the sender signs: a domain tag and the transaction without its signature."""
        return TX_SIGNING_DOMAIN + encode(self.unsigned())


def tx_id(tx: Tx) -> bytes:
    """The transaction's identity: the hash of its full signed encoding."""
    return tagged_hash("medchain/tx", encode(tx))
