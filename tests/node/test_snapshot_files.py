"""Snapshot files: whole snapshots or none, pruning, serving, and keeping a fetched one."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from medchain.node import SnapshotFiles, SnapshotMissing, SnapshotWriter
from medchain.node._snapshot_files import MANIFEST_FILE, SnapshotBuild
from medchain.types import SnapshotInvalid
from tests.node.snapshotchain import Made, SnapChain, entries


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    base = tmp_path_factory.mktemp("files")
    chain = SnapChain(base / "chain.sqlite", entries(200))
    chain.commit({b"k/5": b"five"})
    return Made(base / "home", chain, chunk_bytes=2_000)


def test_a_build_left_unfinished_leaves_no_snapshot(tmp_path: Path) -> None:
    with pytest.raises(OSError), SnapshotBuild(tmp_path, 7) as build:
        build.write("chunk-0", b"data")
        raise OSError("disk full")
    files = SnapshotFiles(tmp_path)
    assert files.heights() == []
    assert list(files.root.iterdir()) == []


def test_a_crashed_build_is_never_listed_and_is_cleaned_up(tmp_path: Path) -> None:
    crashed = SnapshotBuild(tmp_path, 9)  # never finished nor exited: a crash
    crashed.write(MANIFEST_FILE, b"half")
    files = SnapshotFiles(tmp_path)
    assert files.heights() == []
    with pytest.raises(SnapshotMissing):
        files.manifest_bytes(9)
    files.remove_unfinished()
    assert list(files.root.iterdir()) == []


def test_prune_keeps_the_last_snapshots(tmp_path: Path) -> None:
    for height in (30, 10, 40, 20):
        with SnapshotBuild(tmp_path, height) as build:
            build.write(MANIFEST_FILE, b"m%d" % height)
            build.finish()
    files = SnapshotFiles(tmp_path)
    assert files.heights() == [10, 20, 30, 40]
    assert files.prune(3) == [10]
    assert files.prune(2) == [20]
    assert files.heights() == [30, 40]
    assert files.manifest_bytes(40) == b"m40"


def test_a_second_build_of_a_height_keeps_the_first(tmp_path: Path) -> None:
    for content in (b"first", b"second"):
        with SnapshotBuild(tmp_path, 5) as build:
            build.write(MANIFEST_FILE, content)
            build.finish()
    files = SnapshotFiles(tmp_path)
    assert files.manifest_bytes(5) == b"first"
    assert [p.name for p in files.root.iterdir()] == ["5"]


def test_what_is_not_held_is_missing(made: Made) -> None:
    files = SnapshotFiles(made.path.parent.parent)
    height = made.manifest.height
    assert files.manifest(height) == made.manifest
    assert files.chunk_bytes(height, 0) == made.chunks[0]
    with pytest.raises(SnapshotMissing, match="not held here"):
        files.manifest_bytes(height + 1)
    with pytest.raises(SnapshotMissing, match="not held here"):
        files.chunk_bytes(height, len(made.chunks))
    with pytest.raises(SnapshotMissing, match="numbered from 0"):
        files.chunk_bytes(height, -1)


def test_a_damaged_manifest_is_reported(tmp_path: Path) -> None:
    with SnapshotBuild(tmp_path, 3) as build:
        build.write(MANIFEST_FILE, b"\xc1")
        build.finish()
    with pytest.raises(SnapshotInvalid, match="damaged"):
        SnapshotFiles(tmp_path).manifest(3)


def test_a_fetched_snapshot_is_kept_chunk_by_chunk(made: Made, tmp_path: Path) -> None:
    writer = SnapshotWriter(tmp_path, made.manifest, made.header)
    assert writer.missing() == list(range(len(made.chunks)))
    with pytest.raises(SnapshotInvalid):
        writer.add_chunk(0, made.chunks[1])
    for index in reversed(range(len(made.chunks))):
        with pytest.raises(SnapshotMissing, match="still missing"):
            writer.finish()
        writer.add_chunk(index, made.chunks[index])
    assert writer.missing() == []
    path = writer.finish()
    files = SnapshotFiles(tmp_path)
    assert files.heights() == [made.manifest.height]
    assert path == files.path(made.manifest.height)
    assert files.manifest_bytes(made.manifest.height) == (made.path / MANIFEST_FILE).read_bytes()
    assert [files.chunk_bytes(made.manifest.height, n) for n in range(len(made.chunks))] == (
        made.chunks
    )


def test_an_abandoned_fetch_leaves_nothing(made: Made, tmp_path: Path) -> None:
    writer = SnapshotWriter(tmp_path, made.manifest, made.header)
    writer.add_chunk(0, made.chunks[0])
    writer.abandon()
    assert list(SnapshotFiles(tmp_path).root.iterdir()) == []


def test_a_writer_refuses_a_manifest_for_another_header(made: Made, tmp_path: Path) -> None:
    other = dataclasses.replace(made.header, state_root=bytes(32))
    with pytest.raises(SnapshotInvalid):
        SnapshotWriter(tmp_path, made.manifest, other)
    assert SnapshotFiles(tmp_path).heights() == []
