"""The cryptography of key recovery, apart from the chain: a 16-byte recovery secret
split t-of-n with pycryptodome's Shamir secret sharing (over GF(2^128)), each share
sealed to one guardian's encryption key (HPKE key wrap + AES-256-GCM, as records
are), and the kit: the patient's encryption secrets under AES-256-GCM with a key
HKDF-SHA256 derives from the recovery secret. Every sealing is bound to the patient
(and the guardian or request) it is for, so nothing moves to another context."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from Crypto.Protocol.SecretSharing import Shamir
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from medchain.client._envelope import unwrap_with
from medchain.crypto import (
    WRAPPED_KEY_SIZE,
    DecryptionFailed,
    decrypt_content,
    encrypt_content,
    new_content_key,
    wrap_key,
)
from medchain.types import DecodeError, MedchainError, decode, encode

SECRET_SIZE = 16
"""pycryptodome's Shamir shares a 16-byte secret."""


class RecoveryKitError(MedchainError):
    """A share or kit that does not open or does not fit: the message says which."""

    code = "recovery_kit_error"


@dataclass(frozen=True, slots=True)
class RecoveryShare:
    index: int
    """The share's x coordinate, from 1."""
    value: bytes


@dataclass(frozen=True, slots=True)
class _Kit:
    encryption_secrets: tuple[bytes, ...]
    """Oldest first; the last was current when the kit was made."""


def new_recovery_secret() -> bytes:
    return os.urandom(SECRET_SIZE)


def split_recovery_secret(secret: bytes, threshold: int, holders: int) -> list[RecoveryShare]:
    return [RecoveryShare(i, v) for i, v in Shamir.split(threshold, holders, secret, ssss=False)]


def combine_recovery_shares(shares: Sequence[RecoveryShare]) -> bytes:
    """The secret from `threshold` (or more) distinct shares. Too few give a wrong
    secret, which the kit then refuses to open with."""
    return bytes(Shamir.combine([(s.index, s.value) for s in shares], ssss=False))


def share_context(patient: bytes, guardian: bytes) -> bytes:
    return b"medchain/recovery-share/v1\x00" + patient + guardian


def reshare_context(request_id: bytes, guardian: bytes) -> bytes:
    return b"medchain/recovery-reshare/v1\x00" + request_id + guardian


def _kit_context(patient: bytes) -> bytes:
    return b"medchain/recovery-kit/v1\x00" + patient


def seal_share(share: RecoveryShare, recipient_public: bytes, context: bytes) -> bytes:
    """One share sealed to one X25519 key: the wrapped content key, then the ciphertext."""
    key = new_content_key()
    wrapped = wrap_key(key, recipient_public, context)
    return wrapped + encrypt_content(key, encode(share), context)


def open_share(
    blob: bytes, candidates: Sequence[X25519PrivateKey], context: bytes
) -> RecoveryShare:
    """The share sealed in `blob` to one of `candidates`; RecoveryKitError otherwise."""
    try:
        key = unwrap_with(candidates, blob[:WRAPPED_KEY_SIZE], context)
        share = decode(RecoveryShare, decrypt_content(key, blob[WRAPPED_KEY_SIZE:], context))
    except (DecryptionFailed, DecodeError):
        raise RecoveryKitError(
            "a recovery share does not open with this key file: it was sealed to another "
            "key or altered"
        ) from None
    if len(share.value) != SECRET_SIZE or not 1 <= share.index <= 255:
        raise RecoveryKitError("a recovery share has the wrong shape; it was altered")
    return share


def _kit_key(secret: bytes, patient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_kit_context(patient)).derive(
        secret
    )


def seal_kit(secret: bytes, patient: bytes, encryption_secrets: Sequence[bytes]) -> bytes:
    """The patient's encryption secrets (oldest first) under the recovery secret."""
    plaintext = encode(_Kit(tuple(encryption_secrets)))
    return encrypt_content(_kit_key(secret, patient), plaintext, _kit_context(patient))


def open_kit(secret: bytes, patient: bytes, kit: bytes) -> tuple[bytes, ...]:
    """The encryption secrets in the kit; RecoveryKitError if the secret is wrong (too
    few or wrong shares) or the kit was altered."""
    try:
        plaintext = decrypt_content(_kit_key(secret, patient), kit, _kit_context(patient))
        return decode(_Kit, plaintext).encryption_secrets
    except (DecryptionFailed, DecodeError):
        raise RecoveryKitError(
            "the recovery kit does not open with the combined shares: too few guardians' "
            "shares, or a share or the kit was altered"
        ) from None
