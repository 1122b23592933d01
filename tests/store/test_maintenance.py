"""StoreMaintainer: the WAL checkpointed and truncated, freed pages returned, and a
file that does not grow over cycles of writing and deleting state."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from medchain.store import ChainStore, StoreMaintainer, store_files
from tests.store.test_chain_store import CHAIN, commit_next, make_tx, new_store

VALUE = b"v" * 3_000
KEYS = [b"bulk/%04d" % i for i in range(300)]


def test_a_new_store_vacuums_incrementally(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    new_store(path).close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA auto_vacuum").fetchone() == (2,)  # INCREMENTAL
    finally:
        db.close()


def test_maintenance_truncates_the_wal_and_keeps_every_block(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    with new_store(path) as store:
        blocks = [commit_next(store, [make_tx(n)], {b"k%d" % n: VALUE}) for n in range(1, 30)]
        assert store_files(path).wal_bytes > 0
        maintainer = StoreMaintainer(path)
        try:
            done = maintainer.run()
        finally:
            maintainer.close()
        assert done.checkpointed
        assert done.files.wal_bytes == 0 == store_files(path).wal_bytes
        assert done.files.file_bytes == store_files(path).file_bytes > 0
        commit_next(store, [make_tx(100)])  # the store writes on after it
    with ChainStore(path, chain_id=CHAIN) as store:
        assert [store.block_at(b.header.height) for b in blocks] == blocks
        assert store.latest_height() == 30


def test_a_reader_holding_the_wal_defers_the_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    with new_store(path) as store:
        commit_next(store, [make_tx(1)], {b"k": VALUE})
        reader = sqlite3.connect(path, isolation_level=None)
        maintainer = StoreMaintainer(path, busy_timeout_s=0.05)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT COUNT(*) FROM blocks").fetchone()
            commit_next(store, [make_tx(2)], {b"k2": VALUE})
            assert not maintainer.run().checkpointed
            reader.execute("COMMIT")
            assert maintainer.run().checkpointed
        finally:
            maintainer.close()
            reader.close()
        assert store_files(path).wal_bytes == 0


def fill_and_empty(store: ChainStore) -> None:
    """One block writes ~1 MB of state, the next deletes it all."""
    commit_next(store, (), dict.fromkeys(KEYS, VALUE))
    commit_next(store, (), dict.fromkeys(KEYS))


def test_the_file_shrinks_back_after_deletes_over_many_cycles(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    with new_store(path) as store:
        maintainer = StoreMaintainer(path)
        try:
            baseline = maintainer.run().files.file_bytes
            commit_next(store, (), dict.fromkeys(KEYS, VALUE))
            filled = maintainer.run().files.file_bytes
            commit_next(store, (), dict.fromkeys(KEYS))
            emptied = maintainer.run()
            assert emptied.freed_pages > 0
            assert filled > 10 * baseline
            sizes = [emptied.files.file_bytes]
            for _ in range(15):
                fill_and_empty(store)
                sizes.append(maintainer.run().files.file_bytes)
        finally:
            maintainer.close()
        # each pair of blocks adds a few hundred bytes of block rows, nothing more
        assert max(sizes) < baseline + 64 * 1024 < filled
        assert store.get_state(KEYS[0]) is None


def test_a_writer_holding_the_lock_defers_the_run(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    with new_store(path) as store:
        fill_and_empty(store)  # free pages to return
        writer = sqlite3.connect(path, isolation_level=None)
        maintainer = StoreMaintainer(path, busy_timeout_s=0.05)
        try:
            writer.execute("BEGIN IMMEDIATE")
            deferred = maintainer.run()
            assert (deferred.freed_pages, deferred.checkpointed) == (0, False)
            writer.execute("COMMIT")
            done = maintainer.run()
            assert done.freed_pages > 0 and done.checkpointed
        finally:
            maintainer.close()
            writer.close()


def test_a_run_returns_at_most_the_pages_asked(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    with new_store(path) as store:
        fill_and_empty(store)
        maintainer = StoreMaintainer(path)
        try:
            assert maintainer.run(vacuum_pages=10).freed_pages == 10
            assert maintainer.run().freed_pages > 10
            assert maintainer.run().freed_pages == 0
        finally:
            maintainer.close()
