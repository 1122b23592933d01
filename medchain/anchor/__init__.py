"""The verification chain: checkpoints of the working chain anchored in a Vyper
contract on Ethereum, read back to verify, restore or fork the working chain."""

from medchain.anchor._types import (
    Anchor,
    AnchorConflict,
    CheckpointCertificate,
    CheckpointSignature,
    decode_signatures,
    encode_signatures,
)

__all__ = [
    "Anchor",
    "AnchorConflict",
    "CheckpointCertificate",
    "CheckpointSignature",
    "decode_signatures",
    "encode_signatures",
]
