"""Cryptography: keys and addresses, signatures, Merkle proofs, hybrid encryption."""

from medchain.crypto._address import (
    ADDRESS_HRP,
    ADDRESS_SIZE,
    InvalidAddress,
    address_from_public_key,
    format_address,
    parse_address,
)
from medchain.crypto._keys import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    AccountKeys,
    verify_signature,
)
from medchain.crypto._merkle import MerkleProof, inclusion_proof, merkle_root, verify_inclusion
from medchain.types import sha256, tagged_hash

__all__ = [
    "ADDRESS_HRP",
    "ADDRESS_SIZE",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "AccountKeys",
    "InvalidAddress",
    "MerkleProof",
    "address_from_public_key",
    "format_address",
    "inclusion_proof",
    "merkle_root",
    "parse_address",
    "sha256",
    "tagged_hash",
    "verify_inclusion",
    "verify_signature",
]
