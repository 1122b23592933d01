"""Genesis: the chain's id, parameters, initial balances and validators."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChainParams:
    """Consensus-critical parameters; changing one is a hard fork."""

    min_fee: int = 0
    max_tx_bytes: int = 65_536
    max_block_txs: int = 5_000
    max_readers: int = 64
    """Most readers one record version may be wrapped for."""
    unbonding_blocks: int = 100
    """Blocks between unstake and the tokens becoming spendable again."""
    max_votes_per_voter: int = 30


@dataclass(frozen=True, slots=True)
class Allocation:
    address: bytes
    amount: int


@dataclass(frozen=True, slots=True)
class GenesisValidator:
    public_key: bytes
    """Ed25519 public key."""
    name: str
    power: int = 1


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    time_ms: int
    params: ChainParams = field(default_factory=ChainParams)
    allocations: tuple[Allocation, ...] = ()
    validators: tuple[GenesisValidator, ...] = ()
