"""Schema 1 -> 2: a store written by the previous release opens migrated, in one go."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from medchain.app import State, state_root_of
from medchain.store import SCHEMA_VERSION, ChainStore, StoreError, tree_root
from medchain.types import block_hash, encode
from tests.store.test_chain_store import CHAIN, GENESIS_HASH, commit_next, dump, genesis_block

V1_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE blocks (height INTEGER PRIMARY KEY, hash BLOB NOT NULL UNIQUE,"
    " data BLOB NOT NULL)",
    "CREATE TABLE txs (id BLOB PRIMARY KEY,"
    " height INTEGER NOT NULL REFERENCES blocks(height) ON DELETE CASCADE,"
    " idx INTEGER NOT NULL, receipt BLOB NOT NULL, UNIQUE (height, idx))",
    "CREATE TABLE state (key BLOB PRIMARY KEY, value BLOB NOT NULL)",
)

ENTRIES = {b"acct/%d" % n: b"balance-%d" % n for n in range(2_000)} | {b"": b"", b"e": b""}


def write_v1(path: Path, entries: dict[bytes, bytes]) -> None:
    """A store as schema 1 left it: the genesis block, its identity and the state."""
    block = genesis_block()
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path)
    with db:
        for statement in V1_SCHEMA:
            db.execute(statement)
        db.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?)",
            [
                ("schema_version", 1),
                ("chain_id", CHAIN),
                ("genesis_hash", GENESIS_HASH),
                ("latest_height", 0),
                ("state_root", block.header.state_root),
            ],
        )
        db.execute(
            "INSERT INTO blocks(height, hash, data) VALUES (0, ?, ?)",
            (block_hash(block.header), encode(block)),
        )
        db.executemany("INSERT INTO state(key, value) VALUES (?, ?)", entries.items())
    db.close()


def test_a_schema_1_store_opens_migrated(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    write_v1(path, ENTRIES)
    with ChainStore(path, chain_id=CHAIN, genesis_hash=GENESIS_HASH) as store:
        assert store.latest_block() == genesis_block()
        assert store.load_state() == dict(sorted(ENTRIES.items()))
        assert store.get_state(b"acct/7") == b"balance-7"
        nodes = store.state.tree_nodes()
        assert tree_root(nodes) == state_root_of(ENTRIES)
        State(store.state).check_tree()  # the bucket roots hash up to the root
        commit_next(store, changes={b"new": b"1"})  # and it carries on
    db = sqlite3.connect(path)
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    version = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    db.close()
    assert version == (SCHEMA_VERSION,) == (2,)
    assert tables == {"meta", "blocks", "txs", "state", "state_tree"}
    with ChainStore(path, chain_id=CHAIN) as store:  # a second open migrates nothing
        assert store.latest_height() == 1
        assert store.get_state(b"new") == b"1"


def test_a_failed_migration_changes_nothing_and_says_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    write_v1(path, ENTRIES)
    db = sqlite3.connect(path)
    with db:  # a key schema 1 could never have written: no bucket for it
        db.execute("INSERT INTO state(key, value) VALUES (?, ?)", ("text key", b"v"))
    db.close()
    before = dump(path)
    with pytest.raises(StoreError, match=r"could not migrate .* from schema version 1 to 2") as err:
        ChainStore(path)
    assert "nothing was changed" in str(err.value)
    assert dump(path) == before
