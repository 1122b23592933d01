"""Snapshot checks: an honest snapshot passes, every lie is refused with SnapshotInvalid."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.app import (
    STATE_BUCKET_LEVEL,
    STATE_EMPTY_SUBTREES,
    STATE_ROOT_LEVEL,
    state_bucket_of,
    state_cell_of,
    state_cell_roots_of,
    state_root_of,
)
from medchain.node import state_tree_nodes, verify_chunk, verify_manifest
from medchain.types import (
    BucketRoot,
    SnapshotChunk,
    SnapshotInvalid,
    SnapshotManifest,
    StateEntry,
    decode,
    encode,
)
from tests.node.snapshotchain import Made, SnapChain, entries, relabel


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    base = tmp_path_factory.mktemp("checks")
    chain = SnapChain(base / "chain.sqlite", entries(300))
    chain.commit({b"k/3": None, b"extra": b"x"})
    made = Made(base / "home", chain, chunk_bytes=1_500)
    assert len(made.chunks) >= 4
    return made


def _chunk(made: Made, index: int) -> SnapshotChunk:
    return decode(SnapshotChunk, made.chunks[index])


def _lie(made: Made, index: int, entries_: list[StateEntry]) -> tuple[SnapshotManifest, bytes]:
    """Chunk `index` with other entries, and a manifest that names exactly those bytes."""
    chunk = dataclasses.replace(_chunk(made, index), entries=tuple(entries_))
    data = encode(chunk)
    return relabel(made.manifest, index, data), data


def _refused(made: Made, index: int, entries_: list[StateEntry], reason: str) -> None:
    manifest, data = _lie(made, index, entries_)
    with pytest.raises(SnapshotInvalid, match=reason):
        verify_chunk(manifest, index, data)


def test_an_honest_snapshot_passes_and_holds_the_state(made: Made) -> None:
    verify_manifest(made.manifest, made.header)
    found = {}
    cells: dict[int, bytes] = {}
    for index, data in enumerate(made.chunks):
        checked = verify_chunk(made.manifest, index, data)
        cells.update(checked.cell_roots)
        for entry in checked.chunk.entries:
            found[entry.key] = entry.value
    assert found == made.state
    assert cells == state_cell_roots_of(made.state.items())


def test_the_tier_hashes_to_the_state_root(made: Made) -> None:
    nodes = state_tree_nodes(made.manifest.bucket_roots)
    assert [h for level, _, h in nodes if level == STATE_ROOT_LEVEL] == [state_root_of(made.state)]
    assert {(i, h) for level, i, h in nodes if level == STATE_BUCKET_LEVEL} == {
        (r.bucket, r.root) for r in made.manifest.bucket_roots
    }
    assert all(h != STATE_EMPTY_SUBTREES[level] for level, _, h in nodes)
    assert state_tree_nodes(()) == []


def test_a_changed_value_is_refused(made: Made) -> None:
    entries_ = list(_chunk(made, 1).entries)
    entries_[0] = StateEntry(entries_[0].key, entries_[0].value + b"!")
    _refused(made, 1, entries_, "do not hash to its root")


def test_a_dropped_entry_is_refused(made: Made) -> None:
    _refused(made, 1, list(_chunk(made, 1).entries)[1:], "do not hash to its root")


def test_an_added_entry_is_refused(made: Made) -> None:
    chunk = _chunk(made, 1)
    bucket = state_bucket_of(chunk.entries[0].key)
    extra = next(
        StateEntry(k, b"forged")
        for k in (b"forged/%d" % n for n in range(1_000_000))
        if state_bucket_of(k) == bucket
    )
    entries_ = sorted([*chunk.entries, extra], key=lambda e: (state_cell_of(e.key), e.key))
    _refused(made, 1, entries_, "do not hash to its root")


def test_an_entry_in_a_bucket_the_manifest_says_is_empty_is_refused(made: Made) -> None:
    chunk = _chunk(made, 0)
    listed = {r.bucket for r in made.manifest.bucket_roots}
    extra = next(
        StateEntry(k, b"forged")
        for k in (b"forged/%d" % n for n in range(1_000_000))
        if chunk.first_bucket <= state_bucket_of(k) <= chunk.last_bucket
        and state_bucket_of(k) not in listed
    )
    entries_ = sorted([*chunk.entries, extra], key=lambda e: (state_cell_of(e.key), e.key))
    _refused(made, 0, entries_, "do not hash to its root")


def test_entries_out_of_order_are_refused(made: Made) -> None:
    entries_ = list(_chunk(made, 1).entries)
    entries_[0], entries_[1] = entries_[1], entries_[0]
    _refused(made, 1, entries_, "out of order")


def test_a_repeated_entry_is_refused(made: Made) -> None:
    entries_ = list(_chunk(made, 1).entries)
    _refused(made, 1, [entries_[0], *entries_], "out of order or repeated")


def test_an_entry_outside_the_chunks_buckets_is_refused(made: Made) -> None:
    stray = _chunk(made, 2).entries[0]
    _refused(made, 1, [*_chunk(made, 1).entries, stray], "outside its range")


def test_a_missing_listed_bucket_is_refused(made: Made) -> None:
    chunk = _chunk(made, 1)
    first = state_bucket_of(chunk.entries[0].key)
    rest = [e for e in chunk.entries if state_bucket_of(e.key) != first]
    _refused(made, 1, rest, f"bucket {first} do not hash")


def test_a_chunk_swapped_with_another_is_refused(made: Made) -> None:
    with pytest.raises(SnapshotInvalid, match="SHA-256"):
        verify_chunk(made.manifest, 0, made.chunks[1])
    lying = relabel(made.manifest, 0, made.chunks[1])
    with pytest.raises(SnapshotInvalid, match="other buckets"):
        verify_chunk(lying, 0, made.chunks[1])


def test_a_truncated_chunk_is_refused(made: Made) -> None:
    short = made.chunks[1][:-1]
    with pytest.raises(SnapshotInvalid, match="size or SHA-256"):
        verify_chunk(made.manifest, 1, short)
    with pytest.raises(SnapshotInvalid, match="does not decode"):
        verify_chunk(relabel(made.manifest, 1, short), 1, short)


def test_a_chunk_the_manifest_does_not_have_is_refused(made: Made) -> None:
    for index in (-1, len(made.chunks)):
        with pytest.raises(SnapshotInvalid, match="chunks, not a chunk"):
            verify_chunk(made.manifest, index, made.chunks[0])


def test_bucket_roots_that_miss_the_headers_root_are_refused(made: Made) -> None:
    roots = list(made.manifest.bucket_roots)
    changed = [BucketRoot(roots[0].bucket, bytes(32)), *roots[1:]]
    for lie in (changed, roots[1:]):
        manifest = dataclasses.replace(made.manifest, bucket_roots=tuple(lie))
        with pytest.raises(SnapshotInvalid, match="do not hash to the header's state root"):
            verify_manifest(manifest, made.header)


def test_malformed_bucket_roots_are_refused(made: Made) -> None:
    roots = list(made.manifest.bucket_roots)
    empty = BucketRoot(roots[0].bucket, STATE_EMPTY_SUBTREES[STATE_BUCKET_LEVEL])
    for lie, reason in (
        ([roots[1], roots[0], *roots[2:]], "out of order"),
        ([roots[0], *roots], "out of order"),
        ([*roots, BucketRoot(65_536, bytes(32))], "out of range"),
        ([empty, *roots[1:]], "not a non-empty bucket's root"),
    ):
        manifest = dataclasses.replace(made.manifest, bucket_roots=tuple(lie))
        with pytest.raises(SnapshotInvalid, match=reason):
            verify_manifest(manifest, made.header)


def test_a_manifest_for_another_header_is_refused(made: Made) -> None:
    honest = made.manifest
    for manifest in (
        dataclasses.replace(honest, chain_id="other"),
        dataclasses.replace(honest, height=honest.height + 1),
        dataclasses.replace(honest, block_hash=bytes(32)),
        dataclasses.replace(honest, state_root=bytes(32)),
    ):
        with pytest.raises(SnapshotInvalid, match="is not the certified header's"):
            verify_manifest(manifest, made.header)


def test_chunks_that_do_not_cover_every_bucket_are_refused(made: Made) -> None:
    chunks = list(made.manifest.chunks)
    gap = dataclasses.replace(chunks[1], first_bucket=chunks[1].first_bucket + 1)
    huge = dataclasses.replace(chunks[0], size=1 << 40)
    for lie, reason in (
        (chunks[:-1], "cover buckets up to"),
        ([chunks[0], gap, *chunks[2:]], "does not start where"),
        ([huge, *chunks[1:]], "size or hash is out of range"),
        ([], "cover buckets up to"),
    ):
        manifest = dataclasses.replace(made.manifest, chunks=tuple(lie))
        with pytest.raises(SnapshotInvalid, match=reason):
            verify_manifest(manifest, made.header)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_flipped_chunk_is_the_exact_chunk_or_refused(made: Made, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(made.chunks) - 1))
    original = made.chunks[index]
    flipped = bytearray(original)
    for at in data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=4)):
        flipped[at] ^= data.draw(st.integers(1, 255))
    corrupted = bytes(flipped)
    for manifest in (made.manifest, relabel(made.manifest, index, corrupted)):
        try:
            chunk = verify_chunk(manifest, index, corrupted).chunk
        except SnapshotInvalid:
            continue
        assert chunk == decode(SnapshotChunk, original)
