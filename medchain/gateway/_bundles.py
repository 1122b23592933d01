"""A patient's bundle of readings as the blob store holds it: compressed, then sealed
(medchain.client's envelope) for the readers the chain lists when its batch is committed,
and bound to its batch, patient and UTC day. The gateway seals; a reader opens
(medchain.gateway._query reads them back by time)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import lru_cache

from medchain.app import KeyWrap
from medchain.client import NotAReader, open_sealed, seal
from medchain.crypto import AccountKeys, format_address, parse_address
from medchain.gateway._batch import PatientBundle
from medchain.types import MedchainError, decode, encode

BUNDLE_CONTEXT = b"medchain/reading-bundle/v3\x00"
"""v3: the bundle is compressed (zlib) before it is sealed. The devices of one patient
share a bundle, so its size says a little about what they sent together; its readers
and the chain already know how many readings it holds."""
MAX_BUNDLE_BYTES = 128 * 1024 * 1024
"""Largest bundle a reader inflates (a bomb is refused, not unpacked)."""


@dataclass(frozen=True)
class SealedBundle:
    """What the blob store holds for one patient's bundle: the ciphertext and the content
    key wrapped for each reader (the chain's Bundle carries only CID and hash)."""

    wraps: tuple[KeyWrap, ...]
    ciphertext: bytes


def bundle_context(root: bytes, patient: bytes, day: int) -> bytes:
    """What a bundle's encryption is bound to: its batch, patient and UTC day."""
    return BUNDLE_CONTEXT + root + patient + day.to_bytes(8, "big")


def seal_bundle(bundle: PatientBundle, root: bytes, readers: dict[bytes, bytes]) -> bytes:
    """The blob a gateway stores for a patient's bundle of batch `root`: compressed
    (FHIR JSON shrinks about 8 times), then sealed for `readers` (address -> key)."""
    patient = address_bytes(bundle.patient)
    packed = zlib.compress(bundle.encoded, 1)
    sealed = seal(packed, bundle_context(root, patient, bundle.day), readers)
    return encode(SealedBundle(sealed.wraps, sealed.ciphertext))


def open_bundle(
    keys: AccountKeys, blob: bytes, root: bytes, patient: bytes, day: int
) -> PatientBundle:
    """A reader opens a patient's bundle of UTC `day` in batch `root` (fetched by the CID
    on chain); NotAReader if it was not sealed for them."""
    sealed = decode(SealedBundle, blob)
    wrap = next((w for w in sealed.wraps if w.reader == keys.address), None)
    if wrap is None:
        raise NotAReader(f"{format_address(keys.address)} is not a reader of this bundle")
    context = bundle_context(root, patient, day)
    compressed = open_sealed(keys, wrap.wrapped_key, sealed.ciphertext, context)
    inflater = zlib.decompressobj()
    plain = inflater.decompress(compressed, MAX_BUNDLE_BYTES)
    if inflater.unconsumed_tail or not inflater.eof:
        raise MedchainError(
            f"the bundle inflates beyond {MAX_BUNDLE_BYTES} bytes or is cut short; it is not "
            "one a gateway made"
        )
    bundle = decode(PatientBundle, plain)
    if (bundle.patient, bundle.day) != (format_address(patient), day):
        raise MedchainError("the bundle names another patient or day than its place on chain")
    return bundle


@lru_cache(maxsize=65_536)
def address_bytes(text: str) -> bytes:
    """parse_address, memoised (see address_text)."""
    return parse_address(text)


@lru_cache(maxsize=65_536)
def address_text(address: bytes) -> str:
    """format_address, memoised: the same few thousand devices and patients are named
    on every reading, and bech32 costs more than the rest of the profile check."""
    return format_address(address)


__all__ = [
    "BUNDLE_CONTEXT",
    "MAX_BUNDLE_BYTES",
    "SealedBundle",
    "address_bytes",
    "address_text",
    "bundle_context",
    "open_bundle",
    "seal_bundle",
]
