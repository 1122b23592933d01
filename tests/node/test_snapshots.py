"""Making and importing snapshots: the state at exactly one height, in and out whole."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import pytest

from medchain.app import STATE_ROOT_LEVEL, State, TreeNode, state_cell_of, state_root_of
from medchain.node import (
    SnapshotFiles,
    Snapshotter,
    create_snapshot,
    import_snapshot,
    state_tree_nodes,
)
from medchain.node._snapshot_files import chunk_file
from medchain.store import ChainStore, StoreError
from medchain.types import Block, SnapshotInvalid, encode
from tests.node.snapshotchain import GENESIS_HASH, Made, SnapChain, entries


class Target:
    """An empty store as `import_snapshot` writes it: everything, or nothing if the
    entries stop with an error (as a rolled-back transaction)."""

    def __init__(self) -> None:
        self.kept: tuple[str, bytes, Block, list[tuple[bytes, bytes]], list[TreeNode]] | None = None

    def initialise_from_snapshot(
        self,
        chain_id: str,
        genesis_hash: bytes,
        base_block: Block,
        *,
        state: Iterable[tuple[bytes, bytes]],
        tree_nodes: Iterable[TreeNode],
    ) -> None:
        rows = list(state)
        self.kept = (chain_id, genesis_hash, base_block, rows, list(tree_nodes))


def _chain(tmp_path: Path, count: int = 250) -> SnapChain:
    chain = SnapChain(tmp_path / "chain.sqlite", entries(count))
    chain.commit({b"k/1": None, b"added": b"a"})
    return chain


def test_create_verify_import_gives_the_same_state(tmp_path: Path) -> None:
    chain = _chain(tmp_path)
    made = Made(tmp_path / "home", chain, chunk_bytes=1_000)
    assert len(made.chunks) > 3
    assert made.manifest.entries == len(chain.state)
    target = Target()
    assert import_snapshot(target, made.path, made.block, GENESIS_HASH) == made.manifest
    assert target.kept is not None
    chain_id, genesis_hash, base_block, rows, nodes = target.kept
    assert (chain_id, genesis_hash, base_block) == (chain.store.chain_id, GENESIS_HASH, made.block)
    assert dict(rows) == chain.state
    assert [k for k, _ in rows] == sorted(chain.state, key=lambda k: (state_cell_of(k), k))
    top = [h for level, _, h in nodes if level == STATE_ROOT_LEVEL]
    assert top == [state_root_of(dict(rows))] == [made.header.state_root]
    assert nodes == chain.store.state.all_tree_nodes()
    assert [n for n in nodes if n[0] > 0] == state_tree_nodes(made.manifest.bucket_roots)


def test_an_imported_store_opens_on_the_tree_it_was_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The joined store holds the served store's entries by cell and its tree's nodes
    exactly, so the state opens at the base block's root without reading a cell."""
    chain = _chain(tmp_path)
    made = Made(tmp_path / "home", chain, chunk_bytes=1_000)
    with ChainStore(tmp_path / "joined.sqlite") as store:
        import_snapshot(store, made.path, made.block, GENESIS_HASH)
        assert store.state.all_tree_nodes() == chain.store.state.all_tree_nodes()
        for cell in {state_cell_of(key) for key in chain.state}:
            assert store.state.cell_entries(cell) == chain.store.state.cell_entries(cell)

        def no_cell_reads(cell: int) -> list[tuple[bytes, bytes]]:
            raise AssertionError(f"cell {cell} was read: the tree was rebuilt")

        monkeypatch.setattr(store.state, "cell_entries", no_cell_reads)
        state = State(store.state)
        state.check_tree()
        assert state.root() == made.header.state_root


def test_snapshots_of_one_state_are_identical(tmp_path: Path) -> None:
    first = Made(tmp_path / "a", _chain(tmp_path / "1"), chunk_bytes=1_000)
    second = Made(tmp_path / "b", _chain(tmp_path / "2"), chunk_bytes=1_000)
    assert first.manifest == second.manifest
    assert first.chunks == second.chunks


def test_an_empty_state_makes_one_empty_chunk(tmp_path: Path) -> None:
    made = Made(tmp_path / "home", SnapChain(tmp_path / "chain.sqlite", {}), chunk_bytes=1_000)
    assert (made.manifest.entries, made.manifest.bucket_roots) == (0, ())
    assert [(c.first_bucket, c.last_bucket) for c in made.manifest.chunks] == [(0, 65_535)]
    target = Target()
    import_snapshot(target, made.path, made.block, GENESIS_HASH)
    assert target.kept is not None
    assert target.kept[3] == []


def test_import_refuses_a_lying_chunk_and_writes_nothing(tmp_path: Path) -> None:
    made = Made(tmp_path / "home", _chain(tmp_path), chunk_bytes=1_000)
    last = len(made.chunks) - 1
    (made.path / chunk_file(last)).write_bytes(made.chunks[last][:-3])
    target = Target()
    with pytest.raises(SnapshotInvalid, match=f"chunk {last} is not the bytes"):
        import_snapshot(target, made.path, made.block, GENESIS_HASH)
    assert target.kept is None


def test_import_refuses_a_miscounted_manifest(tmp_path: Path) -> None:
    made = Made(tmp_path / "home", _chain(tmp_path), chunk_bytes=1_000)
    lying = replace(made.manifest, entries=made.manifest.entries + 1)
    (made.path / "manifest").write_bytes(encode(lying))
    target = Target()
    with pytest.raises(SnapshotInvalid, match="entries, its manifest says"):
        import_snapshot(target, made.path, made.block, GENESIS_HASH)
    assert target.kept is None


def test_import_refuses_a_snapshot_of_another_height(tmp_path: Path) -> None:
    chain = _chain(tmp_path)
    made = Made(tmp_path / "home", chain, chunk_bytes=1_000)
    with pytest.raises(SnapshotInvalid, match="certified header"):
        import_snapshot(Target(), made.path, chain.blocks[0], GENESIS_HASH)


def test_a_store_whose_state_misses_its_root_makes_no_snapshot(tmp_path: Path) -> None:
    chain = _chain(tmp_path)
    with sqlite3.connect(chain.store.path) as db:
        db.execute("UPDATE state SET value = ? WHERE key = ?", (b"tampered", b"k/7"))
    with chain.store.state_view() as view, pytest.raises(StoreError, match="does not hash"):
        create_snapshot(view, tmp_path / "home")
    assert SnapshotFiles(tmp_path / "home").heights() == []


def test_a_snapshot_taken_while_blocks_commit_holds_its_height(tmp_path: Path) -> None:
    chain = _chain(tmp_path, count=2_000)
    home = tmp_path / "home"
    snapshotter = Snapshotter(chain.store, home, interval=2, keep=3, chunk_bytes=4_000)
    assert snapshotter.after_commit(2) is False  # not due: the tip is at height 1
    chain.commit({b"k/2": b"at two"})
    at_two = dict(chain.state)
    assert snapshotter.after_commit(2)
    for n in range(5):
        chain.commit({b"k/%d" % n: None, b"later/%d" % n: b"x"})
    snapshotter.wait(timeout=60)
    assert not snapshotter.busy
    files = SnapshotFiles(home)
    assert files.heights() == [2]
    manifest = files.manifest(2)
    assert manifest.state_root == chain.blocks[2].header.state_root
    target = Target()
    import_snapshot(target, files.path(2), chain.blocks[2], GENESIS_HASH)
    assert target.kept is not None
    assert dict(target.kept[3]) == at_two != chain.state


def test_the_snapshotter_keeps_the_last_few(tmp_path: Path) -> None:
    chain = _chain(tmp_path, count=20)
    snapshotter = Snapshotter(chain.store, tmp_path / "home", interval=2, keep=2)
    made = []
    for n in range(7):
        block = chain.commit({b"n": b"%d" % n})
        if snapshotter.after_commit(block.header.height):
            made.append(block.header.height)
        snapshotter.wait(timeout=60)
    assert made == [2, 4, 6, 8]
    assert SnapshotFiles(tmp_path / "home").heights() == [6, 8]


def test_a_zero_interval_makes_no_snapshots(tmp_path: Path) -> None:
    chain = _chain(tmp_path, count=5)
    snapshotter = Snapshotter(chain.store, tmp_path / "home", interval=0, keep=2)
    chain.commit({b"n": b"1"})
    assert snapshotter.after_commit(2) is False
    assert SnapshotFiles(tmp_path / "home").heights() == []


def test_a_stopped_snapshot_writes_nothing(tmp_path: Path) -> None:
    chain = _chain(tmp_path, count=20)
    stop = threading.Event()
    stop.set()
    with chain.store.state_view() as view, pytest.raises(InterruptedError):
        create_snapshot(view, tmp_path / "home", stop=stop)
    assert list(SnapshotFiles(tmp_path / "home").root.iterdir()) == []


def test_a_closed_snapshotter_makes_no_more(tmp_path: Path) -> None:
    chain = _chain(tmp_path, count=5)
    snapshotter = Snapshotter(chain.store, tmp_path / "home", interval=2, keep=2)
    chain.commit({b"n": b"1"})
    snapshotter.close()
    assert snapshotter.after_commit(2) is False
    assert SnapshotFiles(tmp_path / "home").heights() == []


def test_a_store_without_a_view_makes_no_snapshot(tmp_path: Path) -> None:
    chain = SnapChain(Path(":memory:"), entries(5))
    chain.commit({b"n": b"1"})
    snapshotter = Snapshotter(chain.store, tmp_path / "home", interval=1, keep=2)
    assert snapshotter.after_commit(1) is False
