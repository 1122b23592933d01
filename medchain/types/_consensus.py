"""Consensus statements the chain itself must be able to check: signed proposals
(two of them for one height and round are equivocation evidence) and the quorum's
accusation that a proposal was invalid. Defined here, below both the consensus
engines and the contracts, so the staking contract can verify evidence without
importing the engines."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.types._block import round_statement

PROPOSAL_SIGNING_DOMAIN = b"medchain/proposal/v1\x00"
ACCUSATION_SIGNING_DOMAIN = b"medchain/accusation/v1\x00"


def proposal_signing_bytes(chain_id: str, height: int, round_: int, block_hash: bytes) -> bytes:
    """What a primary signs when it proposes `block_hash` at (height, round)."""
    return round_statement(PROPOSAL_SIGNING_DOMAIN, chain_id, height, round_, block_hash)


def accusation_signing_bytes(chain_id: str, height: int, round_: int, block_hash: bytes) -> bytes:
    """What a validator signs when it finds the proposal `block_hash` invalid."""
    return round_statement(ACCUSATION_SIGNING_DOMAIN, chain_id, height, round_, block_hash)


@dataclass(frozen=True, slots=True)
class SignedProposal:
    height: int
    round: int
    block_hash: bytes
    proposer: bytes
    """Ed25519 public key of the proposing validator."""
    signature: bytes


@dataclass(frozen=True, slots=True)
class Accusation:
    validator: bytes
    """Ed25519 public key of the accusing validator."""
    signature: bytes


@dataclass(frozen=True, slots=True)
class EquivocationEvidence:
    """Two proposals signed by one primary for one height and round, different blocks."""

    first: SignedProposal
    second: SignedProposal


@dataclass(frozen=True, slots=True)
class InvalidProposalEvidence:
    """A proposal and the accusations of a quorum (2f+1) that it failed validation."""

    proposal: SignedProposal
    accusations: tuple[Accusation, ...]
