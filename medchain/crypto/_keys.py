"""Account keys: an Ed25519 signing key (libsodium via PyNaCl) and an X25519
encryption key (for HPKE key wrapping). Two independent keys, so a leaked
decryption key never lets anyone sign, and vice versa."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import nacl.bindings
import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from medchain.crypto._address import address_from_public_key, format_address

SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """Ed25519 verification (RFC 8032, libsodium's strict checks); never raises."""
    if len(public_key) != PUBLIC_KEY_SIZE or len(signature) != SIGNATURE_SIZE:
        return False
    try:
        nacl.signing.VerifyKey(public_key).verify(message, signature)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True


def is_signing_public_key(public_key: bytes) -> bool:
    """Whether `public_key` is an Ed25519 key a signature could verify under: 32 bytes,
    a point on the curve, not of small order (libsodium's check)."""
    return len(public_key) == PUBLIC_KEY_SIZE and bool(
        nacl.bindings.crypto_core_ed25519_is_valid_point(public_key)
    )


@dataclass(frozen=True)
class AccountKeys:
    """The private half of an account. `repr` never shows the secrets. Derived keys
    are computed once per object (deriving an Ed25519 key is a scalar multiplication)."""

    signing_seed: bytes
    encryption_secret: bytes
    account: bytes = b""
    """The account these keys sign for when it is not the signing key's own address
    (the keys were rotated or recovered: the account keeps its first address)."""
    retired_encryption_secrets: tuple[bytes, ...] = ()
    """X25519 secrets the account used before, oldest first: what was wrapped for them
    still opens."""

    @classmethod
    def generate(cls) -> AccountKeys:
        seed = bytes(nacl.signing.SigningKey.generate())
        enc = X25519PrivateKey.generate().private_bytes_raw()
        return cls(seed, enc)

    def __repr__(self) -> str:
        return f"AccountKeys(address={self.address_text})"

    @cached_property
    def _signer(self) -> nacl.signing.SigningKey:
        return nacl.signing.SigningKey(self.signing_seed)

    @cached_property
    def public_key(self) -> bytes:
        return bytes(self._signer.verify_key)

    @cached_property
    def encryption_public_key(self) -> bytes:
        return self.encryption_private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)

    @cached_property
    def encryption_private_key(self) -> X25519PrivateKey:
        return X25519PrivateKey.from_private_bytes(self.encryption_secret)

    @cached_property
    def key_address(self) -> bytes:
        """The signing key's own address (the account's, until its keys change)."""
        return address_from_public_key(self.public_key)

    @cached_property
    def address(self) -> bytes:
        return self.account or self.key_address

    @cached_property
    def decryption_keys(self) -> tuple[X25519PrivateKey, ...]:
        """The current X25519 key, then the retired ones newest first: what unwrapping
        tries in turn."""
        retired = tuple(
            X25519PrivateKey.from_private_bytes(s)
            for s in reversed(self.retired_encryption_secrets)
        )
        return (self.encryption_private_key, *retired)

    @cached_property
    def address_text(self) -> str:
        return format_address(self.address)

    @cached_property
    def ring_secret(self) -> bytes:
        """The ristretto255 scalar for ring signatures, derived from the signing seed
        (nothing more to store or lose)."""
        from medchain.crypto._ring import ring_secret

        return ring_secret(self.signing_seed)

    @cached_property
    def ring_public_key(self) -> bytes:
        from medchain.crypto._ring import ring_public

        return ring_public(self.ring_secret)

    def sign(self, message: bytes) -> bytes:
        return bytes(self._signer.sign(message).signature)
