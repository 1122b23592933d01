"""The verification chain: checkpoints of the working chain anchored in a Vyper
contract on Ethereum, read back to verify, restore or fork the working chain."""

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
from medchain.anchor._settings import FINALIZED, AnchorSettings, Finality
from medchain.anchor._types import (
    Anchor,
    AnchorConflict,
    CheckpointCertificate,
    CheckpointSignature,
    decode_signatures,
    encode_signatures,
)

__all__ = [
    "ETH_KEY_FILE",
    "FINALIZED",
    "AlreadyAnchored",
    "Anchor",
    "AnchorConflict",
    "AnchorError",
    "AnchorRejected",
    "AnchorSettings",
    "AnchorSettingsError",
    "CheckpointCertificate",
    "CheckpointSignature",
    "EthKeyError",
    "Finality",
    "GanacheError",
    "VerificationChainUnavailable",
    "decode_signatures",
    "encode_signatures",
    "load_eth_key",
    "new_eth_key",
]
