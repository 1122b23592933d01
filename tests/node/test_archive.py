"""Archiving a node's old chain when it adopts a fork (medchain.node._archive)."""

from __future__ import annotations

from pathlib import Path

from medchain.node import (
    BLOBS_DIR,
    CONFIG_FILE,
    GENESIS_FILE,
    SQLITE_SIDE_FILES,
    STORE_FILE,
    WAL_FILE,
    archive_chain,
)

CHAIN = "medchain-test"


def _home(tmp_path: Path) -> tuple[Path, list[str]]:
    """A node home holding its chain's files, each with every SQLite side file, a
    backup of recover's, and what must stay (config, blobs)."""
    home = tmp_path / "node"
    (home / BLOBS_DIR).mkdir(parents=True)
    (home / BLOBS_DIR / "blob").write_text("a record blob")
    (home / CONFIG_FILE).write_text("{}")
    chain_files = [
        f"{base}{suffix}" for base in (STORE_FILE, WAL_FILE) for suffix in ("", *SQLITE_SIDE_FILES)
    ]
    chain_files += [f"{STORE_FILE}.bad-7", GENESIS_FILE]
    for name in chain_files:
        (home / name).write_text(f"content of {name}")
    return home, chain_files


def test_sqlite_side_files_cover_wal_mode_and_the_rollback_journal() -> None:
    assert set(SQLITE_SIDE_FILES) == {"-wal", "-shm", "-journal"}


def test_archiving_moves_the_chain_files_with_every_side_file(tmp_path: Path) -> None:
    home, chain_files = _home(tmp_path)
    archive = archive_chain(home, CHAIN)
    assert archive == home / f"archive-{CHAIN}"
    for name in chain_files:
        assert not (home / name).exists(), name
        assert (archive / name).read_text() == f"content of {name}"
    assert sorted(p.name for p in home.iterdir()) == sorted([BLOBS_DIR, CONFIG_FILE, archive.name])
    assert (home / BLOBS_DIR / "blob").read_text() == "a record blob"


def test_a_chain_archived_twice_gets_a_directory_of_its_own(tmp_path: Path) -> None:
    home, _ = _home(tmp_path)
    first = archive_chain(home, CHAIN)
    (home / STORE_FILE).write_text("the second store")
    second = archive_chain(home, CHAIN)
    assert second == home / f"archive-{CHAIN}.1"
    assert (second / STORE_FILE).read_text() == "the second store"
    assert (first / STORE_FILE).read_text() == f"content of {STORE_FILE}"
    assert not (second / GENESIS_FILE).exists()  # only what was there moves
