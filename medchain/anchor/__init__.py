"""The verification chain: checkpoints of the working chain anchored in a Vyper
contract on Ethereum, read back and checked against the working chain's blocks.
Restoring a store or forking from an anchor rebuilds a node's home, so it lives in
medchain.node (recover_store, fork_genesis), which imports this package."""

from medchain.anchor._client import (
    ALREADY_ANCHORED,
    MAX_CHAIN_ID_BYTES,
    AnchorContract,
    chain_key,
    load_artifact,
)
from medchain.anchor._errors import (
    AlreadyAnchored,
    AnchorError,
    AnchorRejected,
    AnchorSettingsError,
    EthKeyError,
    GanacheError,
    VerificationChainUnavailable,
)
from medchain.anchor._ethkey import ETH_KEY_FILE, load_eth_key, new_eth_key
from medchain.anchor._ganache import ganache_binary, start_ganache, stop_ganache, wait_ready
from medchain.anchor._settings import FINALIZED, AnchorSettings, Finality
from medchain.anchor._types import (
    Anchor,
    AnchorConflict,
    CheckpointCertificate,
    CheckpointSignature,
    decode_signatures,
    encode_signatures,
)
from medchain.anchor._verify import (
    MISMATCH_KINDS,
    ChainAuditor,
    Mismatch,
    StoredBlocks,
    VerifyReport,
    anchor_is_valid,
    compare_hashes,
    verify_store,
)

__all__ = [
    "ALREADY_ANCHORED",
    "ETH_KEY_FILE",
    "FINALIZED",
    "MAX_CHAIN_ID_BYTES",
    "MISMATCH_KINDS",
    "AlreadyAnchored",
    "Anchor",
    "AnchorConflict",
    "AnchorContract",
    "AnchorError",
    "AnchorRejected",
    "AnchorSettings",
    "AnchorSettingsError",
    "ChainAuditor",
    "CheckpointCertificate",
    "CheckpointSignature",
    "EthKeyError",
    "Finality",
    "GanacheError",
    "Mismatch",
    "StoredBlocks",
    "VerificationChainUnavailable",
    "VerifyReport",
    "anchor_is_valid",
    "chain_key",
    "compare_hashes",
    "decode_signatures",
    "encode_signatures",
    "ganache_binary",
    "load_artifact",
    "load_eth_key",
    "new_eth_key",
    "start_ganache",
    "stop_ganache",
    "verify_store",
    "wait_ready",
]
