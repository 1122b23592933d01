"""How one record version (or research copy) is sealed: a fresh content key per
sealing, the plaintext encrypted under it with the sealing's context as associated
data, and the key wrapped for each reader with HPKE, bound to context and reader.
Binding the context means a ciphertext or wrap moved to another record, version or
reader fails to open instead of decrypting into the wrong place."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from medchain.app import KeyWrap
from medchain.crypto import (
    AccountKeys,
    DecryptionFailed,
    decrypt_content,
    encrypt_content,
    new_content_key,
    sha256,
    unwrap_key,
    wrap_key,
)


def version_context(record_id: bytes, version: int) -> bytes:
    return b"medchain/record-version/v1\x00" + record_id + version.to_bytes(4, "big")


def research_context(record_id: bytes, institution: bytes) -> bytes:
    return b"medchain/research-copy/v1\x00" + record_id + institution


def profile_context(address: bytes) -> bytes:
    return b"medchain/profile/v1\x00" + address


@dataclass(frozen=True, slots=True)
class Sealed:
    ciphertext: bytes
    ciphertext_hash: bytes
    wraps: tuple[KeyWrap, ...]
    """Sorted by reader address, as the chain requires."""


def seal(plaintext: bytes, context: bytes, readers: Mapping[bytes, bytes]) -> Sealed:
    """Encrypt under a fresh key wrapped for each reader (address -> X25519 public key)."""
    key = new_content_key()
    ciphertext = encrypt_content(key, plaintext, context)
    wraps = tuple(
        KeyWrap(address, wrap_key(key, readers[address], context + address))
        for address in sorted(readers)
    )
    return Sealed(ciphertext, sha256(ciphertext), wraps)


def unwrap_for(keys: AccountKeys, wrapped_key: bytes, context: bytes) -> bytes:
    """The content key wrapped for this account: under its current encryption key, or
    one it retired (a wrap made before the account's keys changed)."""
    return unwrap_with(keys.decryption_keys, wrapped_key, context + keys.address)


def unwrap_with(candidates: Sequence[X25519PrivateKey], wrapped_key: bytes, info: bytes) -> bytes:
    """Unwrap with the first of `candidates` that opens the wrap; DecryptionFailed if
    none does."""
    for private in candidates[:-1]:
        with contextlib.suppress(DecryptionFailed):
            return unwrap_key(wrapped_key, private, info)
    return unwrap_key(wrapped_key, candidates[-1], info)


def open_sealed(keys: AccountKeys, wrapped_key: bytes, ciphertext: bytes, context: bytes) -> bytes:
    """Unwrap the reader's copy of the key and decrypt; DecryptionFailed if not theirs."""
    return decrypt_content(unwrap_for(keys, wrapped_key, context), ciphertext, context)


def rewrap(
    keys: AccountKeys, wrapped_key: bytes, context: bytes, reader: bytes, reader_public: bytes
) -> bytes:
    """Give a new reader the content key the caller can already open (a grant)."""
    return wrap_key(unwrap_for(keys, wrapped_key, context), reader_public, context + reader)
