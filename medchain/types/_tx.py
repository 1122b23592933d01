"""Signed transactions: who (an Ed25519 public key), what (a contract method with
canonically encoded arguments), replay protection (chain id + per-account nonce)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from functools import cached_property
from typing import TypeVar

from medchain.types._codec import decode, encode
from medchain.types._hashing import tagged_hash

TX_SIGNING_DOMAIN = b"medchain/tx-signature/v1\x00"

A = TypeVar("A")


@dataclass(frozen=True)
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

    @cached_property
    def encoded(self) -> bytes:
        """Canonical bytes, computed once: size checks, ids and storage all need them."""
        return encode(self)

    def __hash__(self) -> int:
        """By the canonical encoding, whose hash Python keeps: an ordering of thousands
        of transactions is a cache key in consensus, and hashing every field of each
        one again on every lookup showed in profiles."""
        return hash(self.encoded)

    def unsigned(self) -> Tx:
        return dataclasses.replace(self, signature=b"")

    def signing_bytes(self) -> bytes:
        """What the sender signs: a domain tag and the transaction without its signature.
        Computed once (admission checks a transaction's signature, then adds it)."""
        cached: bytes | None = self.__dict__.get("_signing_bytes")
        if cached is None:
            cached = self.__dict__["_signing_bytes"] = TX_SIGNING_DOMAIN + encode(self.unsigned())
        return cached

    def decoded_args(self, kind: type[A]) -> A:
        """`args` decoded as `kind` (a frozen dataclass), once per object: admission
        decodes a transaction's arguments to check it, and every validator building
        the block that holds it would decode them again. Raises DecodeError, caching
        nothing, when they do not decode."""
        cached = self.__dict__.get("_args")
        if type(cached) is not kind:
            cached = self.__dict__["_args"] = decode(kind, self.args)
        return cached


def tx_id(tx: Tx) -> bytes:
    """The transaction's identity: the hash of its full signed encoding, computed once
    per object (the mempool, consensus and the block's root all ask for it)."""
    cached: bytes | None = tx.__dict__.get("_id")
    if cached is None:
        cached = tx.__dict__["_id"] = tx_id_of_encoding(tx.encoded)
    return cached


def tx_id_of_encoding(encoded: bytes) -> bytes:
    """The id of the transaction whose canonical encoding is `encoded`, without
    decoding it (a stored block's bytes hold each transaction's encoding)."""
    return tagged_hash("medchain/tx", encoded)


def decode_tx_bytes(raw: bytes) -> Tx:
    """Decode a transaction, remembering `raw` as its encoding (strict decoding makes
    `raw` the one canonical encoding, so it need not be computed again)."""
    tx = decode(Tx, raw)
    tx.__dict__["encoded"] = bytes(raw)
    return tx
