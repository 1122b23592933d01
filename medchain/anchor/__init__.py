"""The verification chain: checkpoints of the working chain anchored in a Vyper
contract on Ethereum, read back and checked against the working chain's blocks.
Restoring a store or forking from an anchor rebuilds a node's home, so it lives in
medchain.node (recover_store, fork_genesis), which imports this package.

The Ethereum client and key files (web3, eth-account) load on first use: importing
them costs most of a second, which every `medchain` command would otherwise pay."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from medchain.anchor._audit import (
    EXIT_ALARM,
    EXIT_OK,
    AuditResult,
    ConnectContract,
    ServedChain,
    amend,
    anchor_json,
    audit_chain,
    parse_finality,
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
from medchain.anchor._ganache import ganache_binary, start_ganache, stop_ganache, wait_ready
from medchain.anchor._recursion import keeping_recursion_limit
from medchain.anchor._settings import ETH_KEY_FILE, FINALIZED, AnchorSettings, Finality
from medchain.anchor._types import (
    MAX_CHAIN_ID_BYTES,
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

if TYPE_CHECKING:
    from medchain.anchor._client import (
        ALREADY_ANCHORED,
        AnchorContract,
        chain_key,
        load_artifact,
    )
    from medchain.anchor._ethkey import load_eth_key, new_eth_key

_LAZY = {
    "ALREADY_ANCHORED": "_client",
    "AnchorContract": "_client",
    "chain_key": "_client",
    "load_artifact": "_client",
    "load_eth_key": "_ethkey",
    "new_eth_key": "_ethkey",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        with keeping_recursion_limit():
            module = import_module(f"medchain.anchor.{_LAZY[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'medchain.anchor' has no attribute {name!r}")


__all__ = [
    "ALREADY_ANCHORED",
    "ETH_KEY_FILE",
    "EXIT_ALARM",
    "EXIT_OK",
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
    "AuditResult",
    "ChainAuditor",
    "CheckpointCertificate",
    "CheckpointSignature",
    "ConnectContract",
    "EthKeyError",
    "Finality",
    "GanacheError",
    "Mismatch",
    "ServedChain",
    "StoredBlocks",
    "VerificationChainUnavailable",
    "VerifyReport",
    "amend",
    "anchor_is_valid",
    "anchor_json",
    "audit_chain",
    "chain_key",
    "compare_hashes",
    "decode_signatures",
    "encode_signatures",
    "ganache_binary",
    "keeping_recursion_limit",
    "load_artifact",
    "load_eth_key",
    "new_eth_key",
    "parse_finality",
    "start_ganache",
    "stop_ganache",
    "verify_store",
    "wait_ready",
]
