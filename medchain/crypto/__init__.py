"""Cryptography: keys and addresses, signatures, Merkle proofs, hybrid encryption, VRF."""

from medchain.crypto._address import (
    ADDRESS_HRP,
    ADDRESS_SIZE,
    InvalidAddress,
    address_from_public_key,
    format_address,
    parse_address,
)
from medchain.crypto._hybrid import (
    CONTENT_KEY_SIZE,
    ENCRYPTION_PUBLIC_KEY_SIZE,
    WRAPPED_KEY_SIZE,
    DecryptionFailed,
    InvalidKey,
    decrypt_content,
    encrypt_content,
    new_content_key,
    unwrap_key,
    wrap_key,
)
from medchain.crypto._keyfile import (
    KEY_FILE_KIND,
    KEY_FILE_VERSION,
    KeyFileError,
    PassphraseRequired,
    load_keys,
    save_keys,
)
from medchain.crypto._keys import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    AccountKeys,
    verify_signature,
)
from medchain.crypto._merkle import MerkleProof, inclusion_proof, merkle_root, verify_inclusion
from medchain.crypto._vrf import (
    VRF_OUTPUT_SIZE,
    VRF_PROOF_SIZE,
    VrfError,
    vrf_proof_to_hash,
    vrf_prove,
    vrf_public_key,
    vrf_verify,
)
from medchain.types import sha256, tagged_hash

__all__ = [
    "ADDRESS_HRP",
    "ADDRESS_SIZE",
    "CONTENT_KEY_SIZE",
    "ENCRYPTION_PUBLIC_KEY_SIZE",
    "KEY_FILE_KIND",
    "KEY_FILE_VERSION",
    "PUBLIC_KEY_SIZE",
    "SIGNATURE_SIZE",
    "VRF_OUTPUT_SIZE",
    "VRF_PROOF_SIZE",
    "WRAPPED_KEY_SIZE",
    "AccountKeys",
    "DecryptionFailed",
    "InvalidAddress",
    "InvalidKey",
    "KeyFileError",
    "MerkleProof",
    "PassphraseRequired",
    "VrfError",
    "address_from_public_key",
    "decrypt_content",
    "encrypt_content",
    "format_address",
    "inclusion_proof",
    "load_keys",
    "merkle_root",
    "new_content_key",
    "parse_address",
    "save_keys",
    "sha256",
    "tagged_hash",
    "unwrap_key",
    "verify_inclusion",
    "verify_signature",
    "vrf_proof_to_hash",
    "vrf_prove",
    "vrf_public_key",
    "vrf_verify",
    "wrap_key",
]
