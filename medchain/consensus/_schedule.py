"""Who votes and who proposes: the one thing the three engines do differently.

- PBFT: every validator votes; the primary is fixed until it fails (PBFT's
  `view mod n`): the proposer of the last block proposes again, and each round
  change passes the role to the next validator in the canonical order. Anyone
  can predict the order — the weakness paper 000 attacks.
- DPoS+PBFT: the epoch's committee (top K by votes) votes; producers take turns
  by height, a round change skips to the next producer.
- AFBFT: every validator votes; for each height every elected candidate proposes
  a block carrying its ECVRF proof over the previous block's seed, validators
  prepare the lowest output once every candidate's block is in (or a short window
  ends if one is missing), and a round change passes to the next-lowest. Nobody
  knows the order before the blocks are out, and nobody can grind it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from medchain.consensus._api import ConsensusApp
from medchain.crypto import address_from_public_key, vrf_proof_to_hash, vrf_verify
from medchain.types import Block, block_hash


class EngineKind(enum.StrEnum):
    PBFT = "pbft"
    AFBFT = "afbft"
    DPOS = "dpos"


def afbft_seed(block: Block) -> bytes:
    """The randomness a block hands to the next draw: its primary's VRF output, or the
    block hash where there was no draw (genesis, or a chain that switched engines)."""
    if block.header.vrf_proof:
        return _proof_output(block.header.vrf_proof)
    return block_hash(block.header)


@lru_cache(maxsize=1024)
def _proof_output(proof: bytes) -> bytes:
    return vrf_proof_to_hash(proof)


def afbft_alpha(previous: Block, height: int) -> bytes:
    """The VRF input for `height`: bound to the chain, the seed and the height."""
    return (
        b"medchain/afbft/v1\x00"
        + previous.header.chain_id.encode()
        + b"\x00"
        + afbft_seed(previous)
        + height.to_bytes(8, "big")
    )


def quorum_size(voters: int) -> int:
    """Smallest vote count among `voters` two of which always share an honest voter."""
    f = (voters - 1) // 3
    return (voters + f) // 2 + 1


@dataclass
class HeightPlan:
    """Everything an engine needs about one height, fixed when the height starts."""

    kind: EngineKind
    height: int
    voters: tuple[bytes, ...]
    order: tuple[bytes, ...]
    """Primary candidates in turn order for PBFT/DPoS; AFBFT's candidates (unordered
    until their VRF outputs are known)."""
    start: int = 0
    """PBFT/DPoS: index into `order` of the round-0 primary."""
    alpha: bytes = b""
    vrf_outputs: dict[bytes, bytes] = field(default_factory=dict)
    """AFBFT: candidate key -> VRF output, for the proofs seen so far."""
    own_proof: bytes = b""
    """AFBFT: this validator's proof for the height, computed once."""

    @property
    def quorum(self) -> int:
        return quorum_size(len(self.voters))

    @property
    def weak_quorum(self) -> int:
        """f + 1: at least one honest voter is among them."""
        return (len(self.voters) - 1) // 3 + 1

    def primary(self, round_: int) -> bytes | None:
        if self.kind is EngineKind.AFBFT:
            ranked = self.vrf_ranking()
            return ranked[round_ % len(ranked)] if ranked else None
        return self.order[(self.start + round_) % len(self.order)]

    def vrf_ranking(self) -> list[bytes]:
        return sorted(self.vrf_outputs, key=lambda k: (self.vrf_outputs[k], k))

    def header_proof_ok(self, block: Block) -> bool:
        """The block header's VRF proof: a valid draw by its proposer under AFBFT (it
        seeds the next height), absent under PBFT and DPoS."""
        proof = block.header.vrf_proof
        if self.kind is not EngineKind.AFBFT:
            return proof == b""
        proposer = next(
            (k for k in self.order if address_from_public_key(k) == block.header.proposer), None
        )
        return proposer is not None and verified_vrf_output(proposer, self.alpha, proof) is not None

    def learn_vrf(self, candidate: bytes, proof: bytes) -> bool:
        """Record a candidate's proof; False if it is not a candidate or the proof is bad."""
        if candidate not in self.order:
            return False
        output = verified_vrf_output(candidate, self.alpha, proof)
        if output is None:
            return False
        self.vrf_outputs[candidate] = output
        return True


@lru_cache(maxsize=4096)
def verified_vrf_output(candidate: bytes, alpha: bytes, proof: bytes) -> bytes | None:
    """A proof is broadcast to every node: verify it once per process."""
    return vrf_verify(candidate, alpha, proof)


def plan_height(kind: EngineKind, app: ConsensusApp) -> HeightPlan:
    previous = app.last_block()
    height = previous.header.height + 1
    validators = app.validators()
    if kind is EngineKind.DPOS:
        committee = app.committee() or validators
        return HeightPlan(kind, height, committee, committee, start=height % len(committee))
    if kind is EngineKind.AFBFT:
        candidates = app.primary_candidates() or validators
        return HeightPlan(kind, height, validators, candidates, alpha=afbft_alpha(previous, height))
    return HeightPlan(
        kind, height, validators, validators, start=_last_proposer_index(previous, validators)
    )


def _last_proposer_index(previous: Block, validators: tuple[bytes, ...]) -> int:
    """PBFT keeps the primary that last succeeded (genesis: the first validator)."""
    by_address: Mapping[bytes, int] = {
        address_from_public_key(key): i for i, key in enumerate(validators)
    }
    return by_address.get(previous.header.proposer, 0)
