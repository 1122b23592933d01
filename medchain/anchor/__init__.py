"""The verification chain: checkpoints of the working chain anchored in a Vyper
contract on Ethereum, read back to verify, restore or fork the working chain."""

from medchain.anchor._client import (
    ALREADY_ANCHORED,
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
from medchain.anchor._fork import ForkError, fork_genesis
from medchain.anchor._ganache import ganache_binary, start_ganache, stop_ganache, wait_ready
from medchain.anchor._restore import NodeRunning, RecoverError, RecoverReport, recover_store
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
    VerifyReport,
    anchor_is_valid,
    compare_hashes,
    verify_store,
)

__all__ = [
    "ALREADY_ANCHORED",
    "ETH_KEY_FILE",
    "FINALIZED",
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
    "ForkError",
    "GanacheError",
    "Mismatch",
    "NodeRunning",
    "RecoverError",
    "RecoverReport",
    "VerificationChainUnavailable",
    "VerifyReport",
    "anchor_is_valid",
    "chain_key",
    "compare_hashes",
    "decode_signatures",
    "encode_signatures",
    "fork_genesis",
    "ganache_binary",
    "load_artifact",
    "load_eth_key",
    "new_eth_key",
    "recover_store",
    "start_ganache",
    "stop_ganache",
    "verify_store",
    "wait_ready",
]
