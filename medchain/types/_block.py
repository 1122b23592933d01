"""Blocks: a header that commits to the transactions, their receipts and the state
root after them, the transactions, and the validators' commit certificate."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.types._codec import encode
from medchain.types._errors import MedchainError
from medchain.types._hashing import tagged_hash
from medchain.types._tx import Tx

ZERO_HASH = b"\x00" * 32


@dataclass(frozen=True, slots=True)
class Attribute:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Event:
    """Something a transaction did that clients index and show (record granted, ...)."""

    kind: str
    attributes: tuple[Attribute, ...] = ()

    def get(self, key: str) -> str:
        for attr in self.attributes:
            if attr.key == key:
                return attr.value
        raise KeyError(key)


@dataclass(frozen=True, slots=True)
class Receipt:
    """Outcome of one included transaction. `ok` false means the call failed: its
    fee and nonce were still consumed, its contract changes were not applied."""

    tx_id: bytes
    ok: bool
    code: str = ""
    message: str = ""
    events: tuple[Event, ...] = ()


class TxFailed(MedchainError):
    """The transaction is valid but its contract call was refused; nothing was recorded."""

    def __init__(self, receipt: Receipt) -> None:
        super().__init__(receipt.message)
        self.code = receipt.code
        self.receipt = receipt


@dataclass(frozen=True, slots=True)
class Header:
    chain_id: str
    height: int
    prev_hash: bytes
    time_ms: int
    """Proposer's time in milliseconds since the epoch; the state machine reads time only here."""
    proposer: bytes
    """Address (20 bytes) of the validator that proposed the block."""
    tx_root: bytes
    receipt_root: bytes
    state_root: bytes
    vrf_proof: bytes = b""
    """AFBFT: the proposer's VRF proof of eligibility; its output seeds the next
    height's draw, so no proposer can grind the seed. Empty under PBFT and DPoS."""


@dataclass(frozen=True, slots=True)
class CommitSig:
    validator: bytes
    """Ed25519 public key of the signing validator."""
    signature: bytes


@dataclass(frozen=True, slots=True)
class Certificate:
    """Signatures of validators over a block hash: proof the block was committed."""

    height: int
    round: int
    block_hash: bytes
    signatures: tuple[CommitSig, ...]


COMMIT_SIGNING_DOMAIN = b"medchain/commit/v1\x00"


def round_statement(domain: bytes, chain_id: str, height: int, round_: int, digest: bytes) -> bytes:
    """The fixed layout every signed statement about a block at (height, round) uses;
    the domain tag keeps a commit, a proposal and an accusation from passing as each other."""
    return (
        domain
        + chain_id.encode()
        + b"\x00"
        + height.to_bytes(8, "big")
        + round_.to_bytes(4, "big")
        + digest
    )


def commit_signing_bytes(chain_id: str, height: int, round_: int, block_hash: bytes) -> bytes:
    """What a validator signs to commit a block."""
    return round_statement(COMMIT_SIGNING_DOMAIN, chain_id, height, round_, block_hash)


@dataclass(frozen=True, slots=True)
class Block:
    header: Header
    txs: tuple[Tx, ...]
    certificate: Certificate

    @property
    def height(self) -> int:
        return self.header.height


def block_hash(header: Header) -> bytes:
    return tagged_hash("medchain/block", encode(header))
