"""A signed bulk upload: an edge gateway stores its batches' sealed bundles on a node
ahead of the transaction that names them, and proves with its registered key that it
is the one asking. The layout is fixed here, once, for the client that signs and the
API that checks; it travels in HTTP headers beside the request body it covers."""

from __future__ import annotations

from medchain.types._hashing import sha256

BULK_UPLOAD_DOMAIN = b"medchain/bulk-upload/v1\x00"
"""Keeps an upload signature from passing as any other signed statement."""
UPLOADER_HEADER = "Medchain-Uploader"
"""The uploader's Ed25519 public key, hex."""
UPLOAD_EXPIRES_HEADER = "Medchain-Upload-Expires"
"""When the signature lapses: milliseconds since the Unix epoch, decimal."""
UPLOAD_SIGNATURE_HEADER = "Medchain-Upload-Signature"
"""The Ed25519 signature of `bulk_upload_signing_bytes`, hex."""
MAX_UPLOAD_EXPIRES_MS = 2**64 - 1


def bulk_upload_signing_bytes(chain_id: str, expires_ms: int, body: bytes) -> bytes:
    """What the uploader signs: the domain, the chain, the expiry time and the SHA-256
    of the whole request body (so the signature covers exactly the bytes stored)."""
    if not 0 <= expires_ms <= MAX_UPLOAD_EXPIRES_MS:
        raise ValueError(f"an upload expiry is a 64-bit time in ms, not {expires_ms}")
    return (
        BULK_UPLOAD_DOMAIN
        + chain_id.encode()
        + b"\x00"
        + expires_ms.to_bytes(8, "big")
        + sha256(body)
    )
