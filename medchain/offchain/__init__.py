"""Off-chain storage: encrypted record bodies in a content-addressed blob store, named
by IPFS CIDv1 (raw, sha2-256); the chain holds only the CID. Kept on local disk by
default, or by an IPFS node over its RPC API (IpfsBlobStore). The CID functions live in
medchain.types (the contracts check CIDs too) and are re-exported here."""

from medchain.offchain._ipfs import (
    IPFS_CHUNKER,
    IPFS_INDEX_FILE,
    IpfsBlobStore,
    IpfsError,
    IpfsUnavailable,
)
from medchain.offchain._store import (
    DEFAULT_MAX_BLOB_BYTES,
    BlobCorrupted,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    CollectableBlobStore,
    LocalBlobStore,
    MemoryBlobStore,
)
from medchain.types import CID_PREFIX_TEXT, InvalidCid, cid_for, cid_from_digest, parse_cid

__all__ = [
    "CID_PREFIX_TEXT",
    "DEFAULT_MAX_BLOB_BYTES",
    "IPFS_CHUNKER",
    "IPFS_INDEX_FILE",
    "BlobCorrupted",
    "BlobNotFound",
    "BlobStore",
    "BlobTooLarge",
    "CollectableBlobStore",
    "InvalidCid",
    "IpfsBlobStore",
    "IpfsError",
    "IpfsUnavailable",
    "LocalBlobStore",
    "MemoryBlobStore",
    "cid_for",
    "cid_from_digest",
    "parse_cid",
]
