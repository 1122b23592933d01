"""Running a chain: the single-validator LocalChain, genesis files, and LedgerApp
(the ledger as consensus engines see it)."""

from medchain.node._genesis_file import (
    GenesisError,
    genesis_from_json,
    genesis_hash,
    genesis_to_json,
    read_genesis,
    write_genesis,
)
from medchain.node._ledger_app import DEFAULT_MAX_PENDING, LedgerApp, PendingFull
from medchain.node._localchain import (
    BLOBS_DIR,
    GENESIS_FILE,
    STORE_FILE,
    VALIDATOR_KEY_FILE,
    LocalChain,
    SealedBlock,
    TxFailed,
    genesis_block,
    wall_clock_ms,
)

__all__ = [
    "BLOBS_DIR",
    "DEFAULT_MAX_PENDING",
    "GENESIS_FILE",
    "STORE_FILE",
    "VALIDATOR_KEY_FILE",
    "GenesisError",
    "LedgerApp",
    "LocalChain",
    "PendingFull",
    "SealedBlock",
    "TxFailed",
    "genesis_block",
    "genesis_from_json",
    "genesis_hash",
    "genesis_to_json",
    "read_genesis",
    "wall_clock_ms",
    "write_genesis",
]
