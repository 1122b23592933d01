"""Snapshot wire types: one canonical encoding each, strict decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medchain.types import (
    BucketRoot,
    ChunkInfo,
    DecodeError,
    MedchainError,
    SnapshotChunk,
    SnapshotInvalid,
    SnapshotManifest,
    StateEntry,
    decode,
    encode,
)

hashes = st.binary(min_size=32, max_size=32)
buckets = st.integers(0, 65_535)

manifests = st.builds(
    SnapshotManifest,
    chain_id=st.text(max_size=20),
    height=st.integers(0, 2**63),
    block_hash=hashes,
    state_root=hashes,
    entries=st.integers(0, 2**40),
    bucket_roots=st.lists(st.builds(BucketRoot, buckets, hashes), max_size=5).map(tuple),
    chunks=st.lists(
        st.builds(ChunkInfo, buckets, buckets, st.integers(0, 2**30), hashes), max_size=5
    ).map(tuple),
)
chunks = st.builds(
    SnapshotChunk,
    first_bucket=buckets,
    last_bucket=buckets,
    entries=st.lists(st.builds(StateEntry, st.binary(), st.binary()), max_size=5).map(tuple),
)


@given(manifests)
def test_a_manifest_round_trips(manifest: SnapshotManifest) -> None:
    assert decode(SnapshotManifest, encode(manifest)) == manifest


@given(chunks)
def test_a_chunk_round_trips(chunk: SnapshotChunk) -> None:
    assert decode(SnapshotChunk, encode(chunk)) == chunk


def test_trailing_bytes_are_refused() -> None:
    data = encode(SnapshotChunk(0, 65_535, (StateEntry(b"k", b"v"),)))
    with pytest.raises(DecodeError):
        decode(SnapshotChunk, data + b"\x00")


def test_snapshot_invalid_is_a_user_facing_error() -> None:
    error = SnapshotInvalid("chunk 3 is not the bytes the manifest names")
    assert isinstance(error, MedchainError)
    assert error.code == "snapshot_invalid"
