"""Content identifiers: IPFS CIDv1, raw codec (0x55), sha2-256, base32 lower case.

A CID names a blob by its SHA-256, so anyone can check that the bytes they fetched are
the bytes the chain refers to. The text form always starts with "bafkrei".

For blobs up to 256 KiB this is exactly the CID that `ipfs add --cid-version=1
--raw-leaves` prints, so the same bytes can be pinned on IPFS under the same name.
IPFS chunks bigger files into a DAG whose root CID is different (dag-pb codec); such
blobs keep our CID here and would have to be stored in IPFS as a single raw block.

Only the canonical text form is accepted: the chain stores CIDs as text, and one blob
must have one name (the same reason the codec has one encoding per object). Encoding
and parsing use the standard library only, so every node agrees byte for byte;
multiformats is used only to explain why a text was refused.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from multiformats import CID

from medchain.types._errors import MedchainError

# CIDv1 || raw codec || sha2-256 || 32-byte digest, each a one-byte varint.
_CID_PREFIX = bytes([0x01, 0x55, 0x12, 0x20])
_DIGEST_SIZE = 32
_MULTIBASE_BASE32 = "b"
CID_PREFIX_TEXT = "bafkrei"
"""How every medchain CID starts (the multibase, version, codec and hash bytes)."""


class InvalidCid(MedchainError):
    code = "invalid_cid"


def _encode(raw: bytes) -> str:
    return _MULTIBASE_BASE32 + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def cid_from_digest(digest: bytes) -> str:
    """The CID of the blob whose SHA-256 is `digest`."""
    if not isinstance(digest, bytes) or len(digest) != _DIGEST_SIZE:
        size = f"{len(digest)} bytes" if isinstance(digest, bytes) else type(digest).__name__
        raise InvalidCid(f"a CID holds a {_DIGEST_SIZE}-byte SHA-256 digest, got {size}")
    return _encode(_CID_PREFIX + digest)


def cid_for(data: bytes) -> str:
    """The CID of `data` (CIDv1, raw, sha2-256, base32)."""
    return _encode(_CID_PREFIX + hashlib.sha256(data).digest())


_CID_TEXT_SIZE = len(cid_from_digest(bytes(_DIGEST_SIZE)))


def parse_cid(text: str) -> bytes:
    """The SHA-256 digest named by a canonical medchain CID; InvalidCid for anything else."""
    if isinstance(text, str) and len(text) == _CID_TEXT_SIZE and text.startswith(CID_PREFIX_TEXT):
        body = text[1:].upper()
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except (binascii.Error, ValueError):
            raw = b""
        if raw[: len(_CID_PREFIX)] == _CID_PREFIX and _encode(raw) == text:
            return raw[len(_CID_PREFIX) :]
    raise InvalidCid(_explain(text))


def _explain(text: object) -> str:
    """Why `text` is not a medchain CID, in words a user can act on."""
    if not isinstance(text, str):
        return f"a CID is text, got {type(text).__name__}"
    shown = text if len(text) <= 80 else text[:77] + "..."
    expected = f"medchain blob CIDs are CIDv1, raw, sha2-256 in base32 ('{CID_PREFIX_TEXT}...')"
    try:
        cid = CID.decode(text)
    except Exception:  # multiformats raises a zoo of error types for bad text
        return f"{shown!r} is not a CID; {expected}"
    if cid.version == 0:
        return (
            f"{shown!r} is a CIDv0 (an IPFS file DAG), not a raw blob; {expected}; "
            "use the CID returned when the blob was stored"
        )
    if cid.codec.name != "raw" or cid.hashfun.name != "sha2-256":
        return (
            f"{shown!r} is a CID with codec {cid.codec.name} and hash {cid.hashfun.name}; "
            f"{expected}"
        )
    if len(cid.raw_digest) != _DIGEST_SIZE:
        return f"{shown!r} holds a truncated {len(cid.raw_digest)}-byte digest; {expected}"
    return (
        f"{shown!r} names the right blob in a non-canonical text form; "
        f"write it as {cid_from_digest(bytes(cid.raw_digest))}"
    )
