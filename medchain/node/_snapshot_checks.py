"""Checking a snapshot against the certified header of its height, piece by piece.

The manifest's bucket roots must hash up to the header's state root; each chunk must be
the bytes the manifest names, and its entries must hash to the manifest's roots of its
buckets (through the roots of their cells, which the joining node keeps). A chunk is
checked alone, so a joining node can take chunks from any peer and refuse a lying
one's without having the rest. Hashes are the state tree's own
(`medchain.app`, `medchain.crypto`): a snapshot that checks is exactly that state.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from medchain.app import (
    STATE_BUCKET_BITS,
    STATE_BUCKET_LEVEL,
    STATE_EMPTY_SUBTREES,
    TreeNode,
    state_bucket_roots_of,
    state_cell_of,
    state_entry_leaf,
    state_tier_of,
)
from medchain.crypto import merkle_root_of_hashes
from medchain.store import tree_root
from medchain.types import (
    HASH_SIZE,
    BucketRoot,
    DecodeError,
    Header,
    SnapshotChunk,
    SnapshotInvalid,
    SnapshotManifest,
    block_hash,
    decode,
    sha256,
)

BUCKETS = 1 << STATE_BUCKET_BITS
MAX_CHUNK_BYTES = 64 * 1024 * 1024
"""A manifest naming a larger chunk is refused: a joining node never buffers more."""


def state_tree_nodes(bucket_roots: Iterable[BucketRoot]) -> list[TreeNode]:
    """The state tree's tier over these bucket roots: every node that is not the empty
    subtree's hash, in (level, index) order (4: the bucket roots; the last: the root),
    hashed by the app's own tree."""
    return state_tier_of({entry.bucket: entry.root for entry in bucket_roots})


def verify_manifest(manifest: SnapshotManifest, header: Header) -> None:
    """Refuse a manifest that is not the state of `header` (whose certificate the caller
    checked), or whose chunks do not cover every bucket once, in order."""
    claims = (
        (manifest.chain_id == header.chain_id, "chain id"),
        (manifest.height == header.height, "height"),
        (manifest.block_hash == block_hash(header), "block hash"),
        (manifest.state_root == header.state_root, "state root"),
    )
    for ok, what in claims:
        if not ok:
            raise _invalid(f"the manifest's {what} is not the certified header's")
    _check_bucket_roots(manifest.bucket_roots)
    if tree_root(state_tree_nodes(manifest.bucket_roots)) != header.state_root:
        raise _invalid("the manifest's bucket roots do not hash to the header's state root")
    _check_chunk_ranges(manifest)


def _check_bucket_roots(bucket_roots: Sequence[BucketRoot]) -> None:
    previous = -1
    for entry in bucket_roots:
        if not previous < entry.bucket < BUCKETS:
            raise _invalid(f"bucket {entry.bucket} is out of order or out of range")
        if len(entry.root) != HASH_SIZE or entry.root == STATE_EMPTY_SUBTREES[STATE_BUCKET_LEVEL]:
            raise _invalid(f"bucket {entry.bucket}'s root is not a non-empty bucket's root")
        previous = entry.bucket


def _check_chunk_ranges(manifest: SnapshotManifest) -> None:
    next_bucket = 0
    for index, info in enumerate(manifest.chunks):
        if info.first_bucket != next_bucket or info.last_bucket < info.first_bucket:
            raise _invalid(f"chunk {index} does not start where chunk {index - 1} ends")
        if not 0 < info.size <= MAX_CHUNK_BYTES or len(info.sha256) != HASH_SIZE:
            raise _invalid(f"chunk {index}'s size or hash is out of range")
        next_bucket = info.last_bucket + 1
    if next_bucket != BUCKETS:
        raise _invalid(f"the chunks cover buckets up to {next_bucket - 1}, not {BUCKETS - 1}")


def verify_chunk(manifest: SnapshotManifest, index: int, data: bytes) -> CheckedChunk:
    """The chunk `index` of a manifest that passed `verify_manifest`, decoded from
    `data` if it is exactly that chunk, with its cells' roots; else SnapshotInvalid."""
    if not 0 <= index < len(manifest.chunks):
        raise _invalid(f"the manifest has {len(manifest.chunks)} chunks, not a chunk {index}")
    info = manifest.chunks[index]
    if len(data) != info.size or sha256(data) != info.sha256:
        raise _invalid(f"chunk {index} is not the bytes the manifest names (size or SHA-256)")
    try:
        chunk = decode(SnapshotChunk, data)
    except DecodeError as exc:
        raise _invalid(f"chunk {index} does not decode ({exc.message})") from exc
    if (chunk.first_bucket, chunk.last_bucket) != (info.first_bucket, info.last_bucket):
        raise _invalid(f"chunk {index} covers other buckets than the manifest says")
    cells = _cell_roots_of(index, chunk)
    found = state_bucket_roots_of(cells)
    expected = _listed_roots(manifest, chunk.first_bucket, chunk.last_bucket)
    for bucket in sorted(expected.keys() | found.keys()):
        if found.get(bucket) != expected.get(bucket):
            raise _invalid(f"chunk {index}'s entries of bucket {bucket} do not hash to its root")
    return CheckedChunk(chunk, cells)


class CheckedChunk(NamedTuple):
    chunk: SnapshotChunk
    cell_roots: dict[int, bytes]
    """The roots of the cells its entries fill: the nodes a joining store keeps below
    the manifest's bucket roots."""


def _cell_roots_of(index: int, chunk: SnapshotChunk) -> dict[int, bytes]:
    """The roots of the cells the chunk's entries fill, checking their order."""
    leaves: dict[int, list[bytes]] = {}
    last: tuple[int, bytes] | None = None
    first, stop = chunk.first_bucket, chunk.last_bucket + 1
    for entry in chunk.entries:
        cell = state_cell_of(entry.key)
        if not first <= cell >> STATE_BUCKET_LEVEL < stop:
            bucket = cell >> STATE_BUCKET_LEVEL
            raise _invalid(f"chunk {index} holds an entry of bucket {bucket}, outside its range")
        if last is not None and (cell, entry.key) <= last:
            raise _invalid(f"chunk {index}'s entries are out of order or repeated")
        last = (cell, entry.key)
        leaves.setdefault(cell, []).append(state_entry_leaf(entry.key, entry.value))
    return {cell: merkle_root_of_hashes(hashes) for cell, hashes in leaves.items()}


def _listed_roots(manifest: SnapshotManifest, first: int, last: int) -> dict[int, bytes]:
    buckets = [entry.bucket for entry in manifest.bucket_roots]
    start = bisect.bisect_left(buckets, first)
    stop = bisect.bisect_right(buckets, last)
    return {entry.bucket: entry.root for entry in manifest.bucket_roots[start:stop]}


def _invalid(reason: str) -> SnapshotInvalid:
    return SnapshotInvalid(f"{reason}; the snapshot was refused, fetch it from another peer")


__all__ = [
    "BUCKETS",
    "MAX_CHUNK_BYTES",
    "CheckedChunk",
    "state_tree_nodes",
    "verify_chunk",
    "verify_manifest",
]
