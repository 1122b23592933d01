"""A full disk is told apart from other write failures, and a chain store refuses the
write whole with DiskFull."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

import pytest

from medchain.store import (
    ChainStore,
    DiskFull,
    StoreError,
    disk_full,
    free_bytes,
    is_disk_full,
    raise_if_disk_full,
)
from tests.store.test_chain_store import (
    CHAIN,
    commit_next,
    dump,
    make_tx,
    new_store,
    next_block,
    receipts_for,
)


def full_sqlite_error(tmp_path: Path) -> sqlite3.Error:
    """What SQLite raises when a database may not grow (as on a full disk)."""
    db = sqlite3.connect(tmp_path / "tiny.sqlite")
    try:
        db.execute("CREATE TABLE t (v BLOB)")
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(sqlite3.Error) as caught:
            db.execute("INSERT INTO t VALUES (?)", (b"x" * 100_000,))
        return caught.value
    finally:
        db.close()


def test_sqlite_full_enospc_and_edquot_are_a_full_disk(tmp_path: Path) -> None:
    assert is_disk_full(full_sqlite_error(tmp_path))
    assert is_disk_full(OSError(errno.ENOSPC, "No space left on device"))
    assert is_disk_full(OSError(errno.EDQUOT, "Disk quota exceeded"))


def test_no_room_for_the_wal_index_is_a_full_disk() -> None:
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = sqlite3.SQLITE_IOERR_SHMSIZE
    assert is_disk_full(error)
    error.sqlite_errorcode = sqlite3.SQLITE_IOERR_READ
    assert not is_disk_full(error)


def test_other_failures_are_not_a_full_disk(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "x.sqlite")
    with pytest.raises(sqlite3.Error) as caught:
        db.execute("SELECT * FROM missing")
    db.close()
    assert not is_disk_full(caught.value)
    assert not is_disk_full(OSError(errno.EACCES, "Permission denied"))
    assert not is_disk_full(ValueError("no space"))


def test_disk_full_names_the_path_the_free_bytes_and_what_to_do(tmp_path: Path) -> None:
    error = disk_full(tmp_path / "chain.sqlite", "block 7")
    assert isinstance(error, StoreError)
    assert error.code == "disk_full"
    assert error.path == tmp_path / "chain.sqlite"
    assert error.free_bytes == free_bytes(tmp_path) > 0
    assert str(tmp_path / "chain.sqlite") in error.message
    assert f"{error.free_bytes:,} bytes free" in error.message
    assert "block 7 was not written" in error.message
    assert "Free space" in error.message and "start the node again" in error.message


def test_free_bytes_asks_the_nearest_existing_parent(tmp_path: Path) -> None:
    assert free_bytes(tmp_path / "not" / "yet" / "here") == free_bytes(tmp_path) > 0


def test_raise_if_disk_full_passes_other_errors_on(tmp_path: Path) -> None:
    raise_if_disk_full(OSError(errno.EACCES, "denied"), tmp_path, "x")  # returns
    with pytest.raises(DiskFull) as caught:
        raise_if_disk_full(OSError(errno.ENOSPC, "full"), tmp_path / "f", "the file")
    assert isinstance(caught.value.__cause__, OSError)


def test_a_full_disk_refuses_the_whole_block_and_a_retry_stores_it(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    with new_store(path) as store:
        commit_next(store, [make_tx(1)], {b"k": b"v"})
        block = next_block(store, [make_tx(n) for n in range(2, 40)])
        changes: dict[bytes, bytes | None] = {b"big/%04d" % i: b"v" * 2_000 for i in range(400)}
        db = store._conn()
        (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.execute(f"PRAGMA max_page_count = {pages + 2}")
        before = dump(path)
        with pytest.raises(DiskFull) as caught:
            store.commit_block(block, receipts_for(block), changes, {})
        assert caught.value.path == path.absolute()
        assert "block 2 was not written" in caught.value.message
        assert dump(path) == before
        assert store.latest_height() == 1
        db.execute("PRAGMA max_page_count = 1073741823")  # space freed
        store.commit_block(block, receipts_for(block), changes, {})
    with ChainStore(path, chain_id=CHAIN) as store:
        assert store.latest_block() == block
        assert store.get_state(b"big/0399") == b"v" * 2_000
