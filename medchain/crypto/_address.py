"""Account addresses: the first 20 bytes of a tagged SHA-256 of the Ed25519 public key,
shown to people as bech32 with the `mc` prefix (a checksum catches typos)."""

from __future__ import annotations

from functools import lru_cache

import bech32

from medchain.types import MedchainError, tagged_hash

ADDRESS_HRP = "mc"
ADDRESS_SIZE = 20


class InvalidAddress(MedchainError):
    code = "invalid_address"


@lru_cache(maxsize=65_536)
def address_from_public_key(public_key: bytes) -> bytes:
    """The 20-byte account address of an Ed25519 public key."""
    return tagged_hash("medchain/address", public_key)[:ADDRESS_SIZE]


@lru_cache(maxsize=65_536)
def format_address(address: bytes) -> str:
    if len(address) != ADDRESS_SIZE:
        raise InvalidAddress(f"an address is {ADDRESS_SIZE} bytes, got {len(address)}")
    data = bech32.convertbits(address, 8, 5)
    assert data is not None  # 8-to-5 bit conversion with padding always succeeds
    text: str = bech32.bech32_encode(ADDRESS_HRP, data)
    return text


def parse_address(text: str) -> bytes:
    """Parse `mc1…`; a typo or a foreign address raises InvalidAddress saying so."""
    hrp, data = bech32.bech32_decode(text.strip())
    if hrp is None or data is None:
        raise InvalidAddress(
            f"{text!r} is not a valid medchain address (bad characters or checksum); "
            "copy it again from `medchain keys new` or the registry"
        )
    if hrp != ADDRESS_HRP:
        raise InvalidAddress(f"{text!r} has prefix {hrp!r}; medchain addresses start with 'mc1'")
    raw = bech32.convertbits(data, 5, 8, False)
    if raw is None or len(raw) != ADDRESS_SIZE:
        raise InvalidAddress(f"{text!r} does not hold a {ADDRESS_SIZE}-byte address")
    return bytes(raw)
