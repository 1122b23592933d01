"""What the working chain anchors on the verification chain, and what is read back.

A checkpoint is the working chain's view at one height (block hash, state root),
signed by a quorum of its validators through consensus (`Checkpoint` messages).
An anchor is that checkpoint as stored in the anchor contract on Ethereum."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.types import DecodeError, decode, encode

MAX_CHAIN_ID_BYTES = 64
"""Longest chain id (UTF-8 bytes) the anchor contract stores (String[64] in Anchor.vy)."""


@dataclass(frozen=True, slots=True)
class CheckpointSignature:
    validator: bytes
    """Ed25519 public key of the working chain's validator."""
    signature: bytes
    """Its signature on the consensus `Checkpoint` message for the height."""


@dataclass(frozen=True, slots=True)
class CheckpointCertificate:
    """A checkpoint with the signatures of at least a quorum of validators: what a
    validator sends to the anchor contract."""

    chain_id: str
    height: int
    block_hash: bytes
    state_root: bytes
    signatures: tuple[CheckpointSignature, ...]


def encode_signatures(signatures: tuple[CheckpointSignature, ...]) -> bytes:
    """The contract stores the quorum signature as opaque bytes: an RLP list of
    [validator, signature] pairs, ordered by validator key."""
    ordered = tuple(sorted(signatures, key=lambda s: s.validator))
    return encode(ordered, tuple[CheckpointSignature, ...])


def decode_signatures(data: bytes) -> tuple[CheckpointSignature, ...]:
    """The pairs of an anchor's signature bytes; DecodeError for anything else (the
    verification chain is read, not trusted)."""
    try:
        pairs = decode(tuple[CheckpointSignature, ...], data)
    except DecodeError as exc:
        raise DecodeError(f"anchor signatures are not an RLP list of pairs: {exc}") from None
    for pair in pairs:
        if len(pair.validator) != 32 or len(pair.signature) != 64:
            raise DecodeError("an anchor signature is not a [32-byte key, 64-byte signature] pair")
    return pairs


@dataclass(frozen=True, slots=True)
class Anchor:
    """One anchor as read from the verification chain."""

    chain_id: str
    height: int
    block_hash: bytes
    state_root: bytes
    signatures: tuple[CheckpointSignature, ...]
    submitter: str
    """Ethereum address (checksummed) that sent the anchor transaction."""
    eth_block: int
    """Verification-chain block that holds the anchor transaction."""
    eth_tx: bytes
    final: bool
    """True once the verification chain's finality rule covers `eth_block`."""


@dataclass(frozen=True, slots=True)
class AnchorConflict:
    """Evidence the contract recorded: a second, different anchor for a height that
    was already anchored."""

    chain_id: str
    height: int
    anchored: Anchor
    conflicting: Anchor
