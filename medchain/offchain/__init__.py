"""Off-chain storage: encrypted record bodies in a content-addressed blob store, named
by IPFS CIDv1 (raw, sha2-256); the chain holds only the CID."""

from medchain.offchain._cid import CID_PREFIX_TEXT, InvalidCid, cid_for, cid_from_digest, parse_cid
from medchain.offchain._store import (
    DEFAULT_MAX_BLOB_BYTES,
    BlobCorrupted,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    LocalBlobStore,
    MemoryBlobStore,
)

__all__ = [
    "CID_PREFIX_TEXT",
    "DEFAULT_MAX_BLOB_BYTES",
    "BlobCorrupted",
    "BlobNotFound",
    "BlobStore",
    "BlobTooLarge",
    "InvalidCid",
    "LocalBlobStore",
    "MemoryBlobStore",
    "cid_for",
    "cid_from_digest",
    "parse_cid",
]
