"""Record encryption: one fresh AES-256-GCM content key per record version, wrapped
for each reader with HPKE (RFC 9180).

Why this shape: the record body is encrypted once, however many readers it has;
each reader gets only a small wrapped key (80 bytes) on chain. Revoking a reader
means the next version gets a new content key that is simply not wrapped for them.
The HPKE suite is base mode, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-256-GCM;
its `info` binds a wrap to its context (record id and version), so a wrapped key
copied into another record or version does not open.

Content blob layout: version byte (1) || 12-byte random nonce || ciphertext || 16-byte tag.
A content key encrypts exactly one blob, so the random nonce can never repeat under it.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medchain.types import MedchainError

CONTENT_KEY_SIZE = 32
"""An AES-256-GCM content key."""

ENCRYPTION_PUBLIC_KEY_SIZE = 32
"""A raw X25519 public key (an account's `encryption_public_key`)."""

WRAPPED_KEY_SIZE = 32 + CONTENT_KEY_SIZE + 16
"""HPKE output for one content key: encapsulated key || ciphertext || tag."""

_BLOB_VERSION = 1
_NONCE_SIZE = 12
_TAG_SIZE = 16
_HEADER_SIZE = 1 + _NONCE_SIZE

CONTENT_OVERHEAD = _HEADER_SIZE + _TAG_SIZE
"""Bytes `encrypt_content` adds to a plaintext (version, nonce, tag): what a contract
subtracts to bound a sealed field by the size of what it seals."""

_SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)

_NOT_A_READER = (
    "this key cannot open the record: you are not an authorised reader of this version, "
    "or the data was altered; ask the record's owner to grant you access"
)
_WRONG_CONTENT_KEY = (
    "this content key cannot open the record: it belongs to another record or version, "
    "or the data was altered; fetch the blob again and unwrap the key of this exact version"
)


class DecryptionFailed(MedchainError):
    """The key does not open the ciphertext. Deliberately vague about which part was
    wrong (key, context or bytes), as AEAD cannot tell them apart."""

    code = "decryption_failed"

    def __init__(self, message: str = _NOT_A_READER) -> None:
        super().__init__(message)


class InvalidKey(MedchainError):
    """Key material of the wrong size or kind (a programming or copy-paste mistake)."""

    code = "invalid_key"


def new_content_key() -> bytes:
    """A fresh random content key; use one per record version, never twice."""
    return AESGCM.generate_key(bit_length=8 * CONTENT_KEY_SIZE)


def _describe(value: object) -> str:
    return f"{len(value)} bytes" if isinstance(value, bytes) else f"a {type(value).__name__}"


def _check_content_key(key: bytes) -> None:
    if not isinstance(key, bytes) or len(key) != CONTENT_KEY_SIZE:
        raise InvalidKey(
            f"a content key is {CONTENT_KEY_SIZE} bytes, got {_describe(key)}; "
            "make one with new_content_key() or unwrap_key()"
        )


def encrypt_content(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt a record body; `aad` (e.g. record id and version) must be given again to decrypt."""
    _check_content_key(key)
    nonce = os.urandom(_NONCE_SIZE)
    sealed = AESGCM(key).encrypt(nonce, plaintext, aad)
    return bytes([_BLOB_VERSION]) + nonce + sealed


def decrypt_content(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Open a blob made by encrypt_content; DecryptionFailed if key, aad or bytes differ."""
    _check_content_key(key)
    if len(blob) < _HEADER_SIZE + _TAG_SIZE:
        raise DecryptionFailed(
            f"the encrypted record is truncated ({len(blob)} bytes); fetch the blob again"
        )
    if blob[0] != _BLOB_VERSION:
        raise DecryptionFailed(
            f"the encrypted record has format version {blob[0]}, this medchain reads "
            f"version {_BLOB_VERSION}; the data was altered or needs a newer medchain"
        )
    nonce = blob[1:_HEADER_SIZE]
    try:
        return AESGCM(key).decrypt(nonce, blob[_HEADER_SIZE:], aad)
    except InvalidTag:
        raise DecryptionFailed(_WRONG_CONTENT_KEY) from None


def wrap_key(content_key: bytes, recipient_public: bytes, info: bytes) -> bytes:
    """Wrap `content_key` for the holder of the X25519 key `recipient_public` (raw 32 bytes).

    `info` binds the wrap to its context; unwrap_key needs the same `info`.
    """
    _check_content_key(content_key)
    if not isinstance(recipient_public, bytes) or len(recipient_public) != (
        ENCRYPTION_PUBLIC_KEY_SIZE
    ):
        raise InvalidKey(
            f"a reader's encryption key is a {ENCRYPTION_PUBLIC_KEY_SIZE}-byte X25519 public "
            f"key, got {_describe(recipient_public)}; use the account's encryption_public_key "
            "from the registry"
        )
    public = X25519PublicKey.from_public_bytes(recipient_public)
    try:
        return _SUITE.encrypt(content_key, public, info)
    except ValueError:
        # Low-order points give an all-zero shared secret, which X25519 refuses.
        raise InvalidKey(
            "this reader's encryption key is not a usable X25519 public key (a low-order "
            "point); ask the reader to register a key made by `medchain keys new`"
        ) from None


def unwrap_key(wrapped: bytes, recipient_private: X25519PrivateKey, info: bytes) -> bytes:
    """Recover a content key wrapped for `recipient_private`; DecryptionFailed if it is
    not ours, `info` differs, or the bytes were altered."""
    if not isinstance(recipient_private, X25519PrivateKey):
        raise InvalidKey(
            "unwrap_key needs an X25519 private key; pass AccountKeys.encryption_private_key"
        )
    if len(wrapped) != WRAPPED_KEY_SIZE:
        raise DecryptionFailed(
            f"a wrapped key is {WRAPPED_KEY_SIZE} bytes, got {len(wrapped)}: the data was "
            "altered or is not a medchain wrapped key"
        )
    try:
        # A wrap of WRAPPED_KEY_SIZE bytes always holds exactly CONTENT_KEY_SIZE bytes.
        return _SUITE.decrypt(wrapped, recipient_private, info)
    except (InvalidTag, ValueError):
        raise DecryptionFailed() from None
