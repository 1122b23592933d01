"""Running a chain: the single-validator LocalChain, genesis files, and LedgerApp
(the ledger as consensus engines see it)."""

from medchain.node._config import (
    CONFIG_FILE,
    LOG_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    PID_FILE,
    WAL_FILE,
    ConfigError,
    NodeConfig,
    PeerConfig,
    config_from_json,
    config_to_json,
    read_config,
    write_config,
)
from medchain.node._genesis_file import (
    GenesisError,
    genesis_from_json,
    genesis_hash,
    genesis_to_json,
    read_genesis,
    write_genesis,
)
from medchain.node._ledger_app import DEFAULT_SIGNATURE_CACHE, LedgerApp, PendingFull
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
from medchain.node._queries import ChainQueries
from medchain.node._signlog import SignLog
from medchain.node._status import NodeStatus, PeerStatus

__all__ = [
    "BLOBS_DIR",
    "CONFIG_FILE",
    "DEFAULT_SIGNATURE_CACHE",
    "GENESIS_FILE",
    "LOG_FILE",
    "NODE_CERT_FILE",
    "NODE_KEY_FILE",
    "PID_FILE",
    "STORE_FILE",
    "VALIDATOR_KEY_FILE",
    "WAL_FILE",
    "ChainQueries",
    "ConfigError",
    "GenesisError",
    "LedgerApp",
    "LocalChain",
    "NodeConfig",
    "NodeStatus",
    "PeerConfig",
    "PeerStatus",
    "PendingFull",
    "SealedBlock",
    "SignLog",
    "TxFailed",
    "config_from_json",
    "config_to_json",
    "genesis_block",
    "genesis_from_json",
    "genesis_hash",
    "genesis_to_json",
    "read_config",
    "read_genesis",
    "wall_clock_ms",
    "write_config",
    "write_genesis",
]
