"""State snapshots on the wire and on disk: a manifest, and chunks of whole buckets.

A snapshot is the committed state at one height, cut into chunks so a joining node
can fetch them from several peers and check each one alone: the manifest lists the
roots of the non-empty buckets (which hash up to the state root in that height's
certified header) and, per chunk, its bucket range, size and SHA-256; a chunk holds
the entries of its buckets, bucket by bucket, each bucket's entries in key order (the
order the store reads them in, one range read per bucket).
"""

from __future__ import annotations

from dataclasses import dataclass

from medchain.types._errors import MedchainError
from medchain.types._genesis import StateEntry


class SnapshotInvalid(MedchainError):
    """A manifest or chunk that does not match the state it claims: fetch it from
    another peer (or make the snapshot again)."""

    code = "snapshot_invalid"


@dataclass(frozen=True, slots=True)
class BucketRoot:
    """The root of one non-empty bucket of the state tree."""

    bucket: int
    root: bytes


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """What the manifest says about one chunk: fetch it, then check it against this."""

    first_bucket: int
    last_bucket: int
    """Inclusive: the chunks cover buckets 0 to 65,535 in order, without gaps."""
    size: int
    """Bytes of the chunk's canonical encoding."""
    sha256: bytes


@dataclass(frozen=True, slots=True)
class SnapshotManifest:
    chain_id: str
    height: int
    block_hash: bytes
    """Hash of the header at `height`, whose state root the bucket roots reach."""
    state_root: bytes
    entries: int
    """How many entries the chunks hold in all."""
    bucket_roots: tuple[BucketRoot, ...]
    """The non-empty buckets, in bucket order; every other bucket is empty."""
    chunks: tuple[ChunkInfo, ...]


@dataclass(frozen=True, slots=True)
class SnapshotChunk:
    first_bucket: int
    last_bucket: int
    entries: tuple[StateEntry, ...]
    """Cell by cell (so bucket by bucket; a bucket is 16 cells of the state tree),
    each cell's entries in key order."""


__all__ = ["BucketRoot", "ChunkInfo", "SnapshotChunk", "SnapshotInvalid", "SnapshotManifest"]
