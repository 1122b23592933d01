"""What the working chain anchors on the verification chain, and what is read back.

A checkpoint is the working chain's view at one height (block hash, state root),
signed by a quorum of its validators through consensus (`Checkpoint` messages).
An anchor is that checkpoint as stored in the anchor contract on Ethereum."""

from __future__ import annotations

from dataclasses import dataclass

import rlp

from medchain.types import DecodeError

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
    ordered = sorted(signatures, key=lambda s: s.validator)
    return bytes(rlp.encode([[s.validator, s.signature] for s in ordered]))


def decode_signatures(data: bytes) -> tuple[CheckpointSignature, ...]:
    try:
        items = rlp.decode(data)
    except Exception as exc:
        raise DecodeError(f"anchor signatures are not an RLP list: {exc}") from exc
    if not isinstance(items, list):
        raise DecodeError("anchor signatures are not an RLP list")
    result = []
    for item in items:
        if (
            not isinstance(item, list)
            or len(item) != 2
            or not all(isinstance(part, bytes) for part in item)
            or len(item[0]) != 32
            or len(item[1]) != 64
        ):
            raise DecodeError("an anchor signature is not a [32-byte key, 64-byte signature] pair")
        result.append(CheckpointSignature(item[0], item[1]))
    return tuple(result)


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
