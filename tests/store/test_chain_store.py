"""ChainStore: round trips, reopening, refusals that change nothing, atomic commits."""

from __future__ import annotations

import dataclasses
import signal
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import cast

import pytest

import medchain.store._chain_store as chain_store_module
from medchain.app import state_cell_of, state_root_of
from medchain.store import (
    MAX_HEIGHT,
    SCHEMA_VERSION,
    ChainStore,
    NotFound,
    StoreError,
    cell_roots,
    tree_nodes_of,
    tree_root,
)
from medchain.types import (
    ZERO_HASH,
    Attribute,
    Block,
    Certificate,
    CommitSig,
    Event,
    Header,
    MedchainError,
    Receipt,
    Tx,
    block_hash,
    encode,
    sha256,
    tx_id,
)

CHAIN = "medchain-test"
GENESIS_HASH = sha256(b"genesis document")
GENESIS_STATE = {b"acct/alice": b"100", b"acct/bob": b"50", b"params": b"p"}


def make_tx(n: int, chain: str = CHAIN) -> Tx:
    """A storable transaction; sender and signature are arbitrary bytes."""
    return Tx(
        chain_id=chain,
        nonce=n,
        sender=n.to_bytes(4, "big") * 8,
        fee=1,
        method="records.create",
        args=b"args-%d" % n,
        signature=b"\x5a" * 64,
    )


def make_block(
    height: int,
    prev_hash: bytes,
    txs: Sequence[Tx] = (),
    *,
    state_root: bytes | None = None,
    chain: str = CHAIN,
) -> Block:
    header = Header(
        chain_id=chain,
        height=height,
        prev_hash=prev_hash,
        time_ms=1_700_000_000_000 + height,
        proposer=b"\x01" * 20,
        tx_root=sha256(b"txs-%d" % height),
        receipt_root=sha256(b"receipts-%d" % height),
        state_root=state_root if state_root is not None else sha256(b"state-%d" % height),
    )
    cert = Certificate(
        height=height,
        round=0,
        block_hash=block_hash(header),
        signatures=(CommitSig(validator=b"\x02" * 32, signature=b"\x03" * 64),),
    )
    return Block(header=header, txs=tuple(txs), certificate=cert)


def receipts_for(block: Block) -> list[Receipt]:
    return [
        Receipt(
            tx_id=tx_id(tx),
            ok=i % 2 == 0,
            code="" if i % 2 == 0 else "denied",
            message="" if i % 2 == 0 else "not authorised",
            events=(Event("record.created", (Attribute("index", str(i)),)),),
        )
        for i, tx in enumerate(block.txs)
    ]


def genesis_block() -> Block:
    return make_block(0, ZERO_HASH, state_root=sha256(b"genesis state"))


def new_store(path: Path) -> ChainStore:
    store = ChainStore(path, chain_id=CHAIN)
    store.initialise(CHAIN, GENESIS_HASH, genesis_block(), GENESIS_STATE, ())
    return store


def next_block(store: ChainStore, txs: Sequence[Tx] = ()) -> Block:
    return make_block(store.latest_height() + 1, store.latest_hash(), txs)


def commit_next(
    store: ChainStore, txs: Sequence[Tx] = (), changes: Mapping[bytes, bytes | None] | None = None
) -> Block:
    block = next_block(store, txs)
    store.commit_block(block, receipts_for(block), changes or {}, {})
    return block


def dump(path: Path) -> list[str]:
    """Every table, row and schema object of the database, as SQL text."""
    db = sqlite3.connect(path)
    try:
        return list(db.iterdump())
    finally:
        db.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "node" / "chain.sqlite"


# -- opening and initialising ---------------------------------------------------------


def test_new_store_holds_no_chain(db_path: Path) -> None:
    with ChainStore(db_path) as store:
        assert db_path.exists()
        assert not store.is_initialised
        assert store.latest_height() == -1
        assert store.block_at(0) is None
        assert store.load_state() == {}
        assert store.get_state(b"x") is None
        with pytest.raises(NotFound, match="initialise it"):
            _ = store.chain_id
        with pytest.raises(NotFound):
            store.latest_block()
        with pytest.raises(NotFound):
            store.commit_block(make_block(1, ZERO_HASH), [], {}, {})


def test_errors_are_medchain_errors_with_codes() -> None:
    assert issubclass(StoreError, MedchainError)
    assert issubclass(NotFound, StoreError)
    assert StoreError.code == "store_error"
    assert NotFound.code == "not_found"


def test_database_uses_wal_full_sync_and_foreign_keys(db_path: Path) -> None:
    with new_store(db_path) as store:
        db = store._conn()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            SCHEMA_VERSION,
        )


def test_initialise_stores_genesis(db_path: Path) -> None:
    genesis = genesis_block()
    with new_store(db_path) as store:
        assert store.is_initialised
        assert store.chain_id == CHAIN
        assert store.genesis_hash == GENESIS_HASH
        assert store.latest_height() == 0
        assert store.latest_block() == genesis
        assert store.latest_hash() == block_hash(genesis.header)
        assert store.state_root() == genesis.header.state_root
        assert store.load_state() == GENESIS_STATE


def test_initialise_twice_is_refused(db_path: Path) -> None:
    with new_store(db_path) as store, pytest.raises(StoreError, match="already holds chain"):
        store.initialise(CHAIN, GENESIS_HASH, genesis_block(), {}, ())


@pytest.mark.parametrize(
    ("block", "match"),
    [
        (make_block(1, ZERO_HASH), "height 0"),
        (make_block(0, ZERO_HASH, chain="other-chain"), "is for chain 'other-chain'"),
        (make_block(0, ZERO_HASH, [make_tx(1)]), "must not carry transactions"),
    ],
)
def test_bad_genesis_is_refused_and_nothing_is_written(
    db_path: Path, block: Block, match: str
) -> None:
    with ChainStore(db_path) as store:
        before = dump(db_path)
        with pytest.raises(StoreError, match=match):
            store.initialise(CHAIN, GENESIS_HASH, block, GENESIS_STATE, ())
        assert not store.is_initialised
        assert dump(db_path) == before


def test_initialise_for_another_chain_than_expected_is_refused(db_path: Path) -> None:
    with (
        ChainStore(db_path, chain_id="expected") as store,
        pytest.raises(StoreError, match="not 'expected'"),
    ):
        store.initialise(CHAIN, GENESIS_HASH, genesis_block(), {}, ())


# -- round trips ----------------------------------------------------------------------


def test_blocks_receipts_and_state_round_trip(db_path: Path) -> None:
    with new_store(db_path) as store:
        b1 = commit_next(store, [make_tx(1), make_tx(2)], {b"acct/alice": b"90", b"k": b"v"})
        b2 = commit_next(store, [make_tx(3)], {b"acct/bob": b"60"})
        b3 = commit_next(store)  # an empty block

        assert store.latest_height() == 3
        assert store.latest_block() == b3
        assert store.latest_hash() == block_hash(b3.header)
        assert store.state_root() == b3.header.state_root
        assert store.block_at(1) == b1
        assert store.block_at(2) == b2
        assert store.block_at(4) is None
        assert store.block_by_hash(block_hash(b2.header)) == b2
        assert store.block_by_hash(b"\x00" * 32) is None

        for block in (b1, b2):
            for index, (tx, receipt) in enumerate(zip(block.txs, receipts_for(block), strict=True)):
                assert store.tx_location(tx_id(tx)) == (block.height, index)
                assert store.receipt(tx_id(tx)) == receipt
        assert store.tx_location(tx_id(make_tx(99))) is None
        assert store.receipt(tx_id(make_tx(99))) is None

        assert store.get_state(b"acct/alice") == b"90"
        assert store.get_state(b"acct/bob") == b"60"
        assert store.get_state(b"k") == b"v"
        assert store.load_state() == {
            **GENESIS_STATE,
            b"acct/alice": b"90",
            b"acct/bob": b"60",
            b"k": b"v",
        }


def test_blocks_iterates_an_inclusive_range_in_batches(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_store_module, "_BATCH", 3)
    with new_store(db_path) as store:
        committed = [store.latest_block()] + [commit_next(store, [make_tx(h)]) for h in range(1, 9)]
        assert list(store.blocks()) == committed
        assert list(store.blocks(2, 6)) == committed[2:7]
        assert list(store.blocks(7)) == committed[7:]
        assert list(store.blocks(5, 5)) == [committed[5]]
        assert list(store.blocks(6, 2)) == []
        assert list(store.blocks(20, 30)) == []


def test_block_summaries_give_each_header_and_its_transaction_ids(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_store_module, "_BATCH", 3)
    with new_store(db_path) as store:
        committed = [store.latest_block()] + [
            commit_next(store, [make_tx(10 * h + k) for k in range(h % 4)]) for h in range(1, 9)
        ]

        def summaries(blocks: list[Block]) -> list[tuple[Header, tuple[bytes, ...]]]:
            return [(b.header, tuple(tx_id(tx) for tx in b.txs)) for b in blocks]

        assert list(store.block_summaries()) == summaries(committed)
        assert list(store.block_summaries(2, 6)) == summaries(committed[2:7])
        assert list(store.block_summaries(6, 2)) == []


def test_a_damaged_block_is_named_by_its_summary(db_path: Path) -> None:
    with new_store(db_path) as store:
        block = commit_next(store, [make_tx(1), make_tx(2)])
        header = encode(block.header)
        cut_short = b"\xf9\xff\xff" + header + b"\xc5\x83abc"  # a list one byte short
        overrun = b"\xf9\xff\xff" + header + b"\xc3\x83abc"  # an item past its list
        db = sqlite3.connect(db_path)
        for data, reason in (
            (b"\xc3\x01", "header 1 does not decode"),
            (cut_short, "block 1 .* is damaged"),
            (overrun, r"block 1 .* is damaged \(its transactions\)"),
        ):
            db.execute("UPDATE blocks SET data = ? WHERE height = 1", (data,))
            db.commit()
            with pytest.raises(StoreError, match=reason):
                list(store.block_summaries(1, 1))
        db.close()


def test_block_ids_reads_id_and_state_root_from_the_stored_headers(db_path: Path) -> None:
    with new_store(db_path) as store:
        committed = [store.latest_block()] + [commit_next(store) for _ in range(1, 1_200)]
        wanted = [0, 5, 5, 1_199, 700, 5_000]  # a duplicate, out of order, one missing
        assert store.block_ids(wanted) == {
            h: (block_hash(committed[h].header), committed[h].header.state_root)
            for h in (0, 5, 700, 1_199)
        }
        assert store.block_ids(range(1_200)).keys() == set(range(1_200))  # > one query
        assert store.block_ids([]) == {}


def test_heights_beyond_what_sqlite_holds_are_not_held(db_path: Path) -> None:
    """A height over 2^63 - 1 (or below 0) is no block, not an OverflowError from
    sqlite3: API clients, peers and anchors can all name one."""
    with new_store(db_path) as store:
        committed = [store.latest_block(), commit_next(store)]
        for height in (MAX_HEIGHT, MAX_HEIGHT + 1, 2**64, -1, -(2**64)):
            assert store.block_at(height) is None
        assert list(store.blocks(MAX_HEIGHT + 1)) == []
        assert list(store.blocks(2**64, 2**70)) == []
        assert store.block_ids([1, MAX_HEIGHT, MAX_HEIGHT + 1, 2**70, -1, -(2**70)]) == {
            1: (block_hash(committed[1].header), committed[1].header.state_root)
        }
        assert list(store.blocks(-(2**70), 2**70)) == committed


def test_block_ids_follow_an_edited_header_and_name_a_damaged_row(db_path: Path) -> None:
    with new_store(db_path) as store:
        block = commit_next(store, [make_tx(1)])
        edited = dataclasses.replace(
            block, header=dataclasses.replace(block.header, time_ms=block.header.time_ms + 1)
        )
        db = sqlite3.connect(db_path)
        db.execute("UPDATE blocks SET data = ? WHERE height = 1", (encode(edited),))
        db.commit()
        assert store.block_ids([1]) == {1: (block_hash(edited.header), block.header.state_root)}
        db.execute("UPDATE blocks SET data = ? WHERE height = 1", (b"\xc3\x01",))
        db.commit()
        db.close()
        with pytest.raises(StoreError, match="header 1 does not decode"):
            store.block_ids([1])


def test_deletes_remove_keys(db_path: Path) -> None:
    with new_store(db_path) as store:
        commit_next(store, changes={b"a": b"1", b"b": b"2"})
        commit_next(store, changes={b"a": None, b"never-set": None, b"b": b"3"})
        assert store.get_state(b"a") is None
        assert store.get_state(b"b") == b"3"
        assert b"a" not in store.load_state()
        assert b"never-set" not in store.load_state()


def test_empty_values_are_kept_distinct_from_deletes(db_path: Path) -> None:
    with new_store(db_path) as store:
        commit_next(store, changes={b"empty": b""})
        assert store.get_state(b"empty") == b""
        assert store.load_state()[b"empty"] == b""


def test_load_state_is_sorted_by_key(db_path: Path) -> None:
    keys = [b"b", b"\xff", b"a", b"", b"ab", b"\x00", b"a\x00", b"\x00\x00", b"B", b"aa\xff"]
    with ChainStore(db_path) as store:
        store.initialise(CHAIN, GENESIS_HASH, genesis_block(), {keys[0]: b"g"}, ())
        commit_next(store, changes={k: k + b"!" for k in reversed(keys[1:])})
        state = store.load_state()
        assert list(state) == sorted(keys)
        assert state[b"\xff"] == b"\xff!"


def test_large_block_commits_and_reads_back(db_path: Path) -> None:
    txs = [make_tx(n) for n in range(5_000)]
    changes: dict[bytes, bytes | None] = {
        n.to_bytes(4, "big"): b"value-%d" % n for n in range(20_000)
    }
    with new_store(db_path) as store:
        block = commit_next(store, txs, changes)
        assert store.block_at(1) == block
        assert store.tx_location(tx_id(txs[4_999])) == (1, 4_999)
        assert len(store.load_state()) == 20_000 + len(GENESIS_STATE)


# -- reopening ------------------------------------------------------------------------


def test_reopening_restores_tip_state_and_receipts(db_path: Path) -> None:
    with new_store(db_path) as store:
        blocks = [
            commit_next(
                store,
                [make_tx(h * 10 + i) for i in range(3)],
                {
                    b"h/%d" % h: b"%d" % h,
                    b"acct/alice": b"%d" % (100 - h),
                    b"acct/bob": None if h == 2 else b"50",
                },
            )
            for h in range(1, 5)
        ]
        state, tip, root = store.load_state(), store.latest_block(), store.state_root()

    with ChainStore(db_path, chain_id=CHAIN, genesis_hash=GENESIS_HASH) as store:
        assert store.is_initialised
        assert store.chain_id == CHAIN
        assert store.genesis_hash == GENESIS_HASH
        assert store.load_state() == state
        assert list(store.load_state()) == list(state)
        assert store.latest_block() == tip
        assert store.latest_height() == 4
        assert store.state_root() == root
        for block in blocks:
            for tx, receipt in zip(block.txs, receipts_for(block), strict=True):
                assert store.receipt(tx_id(tx)) == receipt
        commit_next(store, [make_tx(1000)])  # and the chain carries on
        assert store.latest_height() == 5


def test_committed_block_survives_sigkill(db_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import sys, time
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_chain_store import commit_next, make_tx, new_store
        store = new_store(Path({str(db_path)!r}))
        commit_next(store, [make_tx(1)], {{b"durable": b"yes"}})
        print("committed", flush=True)
        time.sleep(60)  # alive until the test kills it
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "committed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with ChainStore(db_path, chain_id=CHAIN) as store:
        assert store.latest_height() == 1
        assert store.get_state(b"durable") == b"yes"
        assert store.tx_location(tx_id(make_tx(1))) == (1, 0)


def test_other_chain_id_is_refused_on_open(db_path: Path) -> None:
    new_store(db_path).close()
    with pytest.raises(StoreError, match="holds chain 'medchain-test', not 'other-chain'") as err:
        ChainStore(db_path, chain_id="other-chain")
    assert "separate data directory" in str(err.value)


def test_other_genesis_is_refused_on_open(db_path: Path) -> None:
    new_store(db_path).close()
    with pytest.raises(StoreError, match="initialised from genesis"):
        ChainStore(db_path, chain_id=CHAIN, genesis_hash=sha256(b"another genesis"))


def test_unknown_schema_version_is_refused(db_path: Path) -> None:
    new_store(db_path).close()
    db = sqlite3.connect(db_path)
    with db:
        db.execute("UPDATE meta SET value = 99 WHERE key = 'schema_version'")
    db.close()
    expected = f"schema version 99, this medchain reads version {SCHEMA_VERSION}"
    with pytest.raises(StoreError, match=expected):
        ChainStore(db_path)


@pytest.mark.parametrize("version", [1, 2])
def test_a_store_of_the_bucketed_commitment_is_refused_and_named(
    db_path: Path, version: int
) -> None:
    """Schemas 1 and 2 hold chains whose state roots commit to 65,536 buckets of
    entries: this version cannot continue them, and says so instead of "damaged"."""
    new_store(db_path).close()
    db = sqlite3.connect(db_path)
    with db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (version,))
    db.close()
    with pytest.raises(StoreError, match="65,536 buckets") as info:
        ChainStore(db_path)
    assert "start a new one in an empty directory" in info.value.message
    assert f"schema version {version}" in info.value.message


def test_a_store_from_before_organisations_is_refused_and_named(db_path: Path) -> None:
    """Schema 3 holds contract state without the fields organisations, credentials and
    proxies added: this version says why it cannot continue it."""
    new_store(db_path).close()
    db = sqlite3.connect(db_path)
    with db:
        db.execute("UPDATE meta SET value = 3 WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(StoreError, match="from before organisations") as info:
        ChainStore(db_path)
    assert "Start a new chain in an empty directory" in info.value.message


def test_a_store_from_before_patient_rights_is_refused_and_named(db_path: Path) -> None:
    """Schema 4 holds records without grant terms or erasure fields: refused, saying why."""
    new_store(db_path).close()
    db = sqlite3.connect(db_path)
    with db:
        db.execute("UPDATE meta SET value = 4 WHERE key = 'schema_version'")
    db.close()
    with pytest.raises(StoreError, match="from before consents") as info:
        ChainStore(db_path)
    assert "Start a new chain in an empty directory" in info.value.message


def test_foreign_sqlite_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db = sqlite3.connect(db_path)
    with db:
        db.execute("CREATE TABLE people (name TEXT)")
    db.close()
    with pytest.raises(StoreError, match="not a medchain chain store"):
        ChainStore(db_path)


def test_file_that_is_not_a_database_is_refused(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    db_path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="cannot open the chain store"):
        ChainStore(db_path)


def test_directory_path_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"chain\.sqlite"):
        ChainStore(tmp_path)


def test_closed_store_refuses_calls(db_path: Path) -> None:
    with new_store(db_path) as store:
        pass
    store.close()  # twice is fine
    with pytest.raises(StoreError, match="is closed"):
        store.latest_height()


# -- refusals change nothing ----------------------------------------------------------


def refused_commit_changes_nothing(
    path: Path,
    store: ChainStore,
    block: Block,
    receipts: Sequence[Receipt],
    changes: Mapping[bytes, bytes | None],
    match: str,
) -> None:
    before, height, state = dump(path), store.latest_height(), store.load_state()
    with pytest.raises(StoreError, match=match):
        store.commit_block(block, receipts, changes, {})
    assert dump(path) == before
    assert store.latest_height() == height
    assert store.load_state() == state


def test_wrong_height_is_refused(db_path: Path) -> None:
    with new_store(db_path) as store:
        commit_next(store, [make_tx(1)])
        for height in (1, 3):
            block = make_block(height, store.latest_hash(), [make_tx(2)])
            refused_commit_changes_nothing(
                db_path,
                store,
                block,
                receipts_for(block),
                {b"x": b"1"},
                "the next block to commit is 2",
            )


def test_wrong_prev_hash_is_refused(db_path: Path) -> None:
    with new_store(db_path) as store:
        first = commit_next(store)
        block = make_block(2, first.header.prev_hash, [make_tx(2)])
        refused_commit_changes_nothing(
            db_path, store, block, receipts_for(block), {b"x": b"1"}, "another fork"
        )


def test_block_of_another_chain_is_refused(db_path: Path) -> None:
    with new_store(db_path) as store:
        block = make_block(1, store.latest_hash(), chain="other-chain")
        refused_commit_changes_nothing(db_path, store, block, [], {}, "does not belong here")


def test_receipts_must_match_the_transactions(db_path: Path) -> None:
    with new_store(db_path) as store:
        block = next_block(store, [make_tx(1), make_tx(2)])
        receipts = receipts_for(block)
        refused_commit_changes_nothing(
            db_path, store, block, receipts[:1], {}, "2 transactions but 1 receipts"
        )
        refused_commit_changes_nothing(
            db_path, store, block, receipts[::-1], {}, "pass the receipts in block order"
        )


def test_transaction_stored_before_is_refused(db_path: Path) -> None:
    with new_store(db_path) as store:
        commit_next(store, [make_tx(1)])
        block = next_block(store, [make_tx(2), make_tx(1)])
        refused_commit_changes_nothing(
            db_path,
            store,
            block,
            receipts_for(block),
            {b"x": b"1"},
            "already stored in block 1",
        )
        twice = next_block(store, [make_tx(3), make_tx(3)])
        refused_commit_changes_nothing(
            db_path, store, twice, receipts_for(twice), {}, "same transaction twice"
        )


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"text-key": b"v"}, "keys must be bytes"),
        ({b"k": "text"}, "must be bytes or None"),
        ({b"k": 7}, "must be bytes or None"),
    ],
)
def test_state_changes_must_be_bytes(
    db_path: Path, changes: dict[object, object], match: str
) -> None:
    with new_store(db_path) as store:
        block = next_block(store)
        bad = cast("Mapping[bytes, bytes | None]", changes)
        refused_commit_changes_nothing(db_path, store, block, [], bad, match)


def test_second_writer_cannot_fork_the_stored_chain(db_path: Path) -> None:
    with new_store(db_path) as first, ChainStore(db_path, chain_id=CHAIN) as second:
        ours = next_block(second, [make_tx(1)])
        commit_next(first, [make_tx(2)])
        refused_commit_changes_nothing(
            db_path, second, ours, receipts_for(ours), {}, "does not extend the stored tip"
        )


# -- atomicity ------------------------------------------------------------------------


def big_changes() -> dict[bytes, bytes | None]:
    changes: dict[bytes, bytes | None] = {b"s/%05d" % n: b"v%d" % n for n in range(10_000)}
    changes[b"acct/alice"] = None
    return changes


def test_failure_inside_commit_leaves_database_as_before(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block, its txs and the state rows are written, then recording the tip fails."""

    def explode(db: sqlite3.Connection, values: Mapping[str, object]) -> None:
        assert db.execute("SELECT COUNT(*) FROM state").fetchone()[0] > 10_000
        raise RuntimeError("injected failure")

    with new_store(db_path) as store:
        commit_next(store, [make_tx(1)], {b"k": b"v"})
        block = next_block(store, [make_tx(n) for n in range(2, 50)])
        with monkeypatch.context() as patch:
            patch.setattr(ChainStore, "_set_meta", staticmethod(explode))
            before = dump(db_path)
            with pytest.raises(RuntimeError, match="injected failure"):
                store.commit_block(block, receipts_for(block), big_changes(), {})
            assert dump(db_path) == before
            assert store.latest_height() == 1
            assert store.tx_location(tx_id(make_tx(2))) is None
            assert store.get_state(b"acct/alice") == b"100"
        store.commit_block(block, receipts_for(block), big_changes(), {})  # retry succeeds
        assert store.latest_height() == 2
        assert store.get_state(b"acct/alice") is None

    with ChainStore(db_path, chain_id=CHAIN) as store:
        assert store.latest_block() == block


def test_sqlite_failure_midway_through_state_rolls_back(db_path: Path) -> None:
    """A trigger aborts the 5,001st state insert: the earlier rows must vanish too."""
    new_store(db_path).close()
    db = sqlite3.connect(db_path)
    with db:
        db.execute(
            "CREATE TRIGGER injected BEFORE INSERT ON state WHEN NEW.key = CAST('s/05000' AS BLOB)"
            " BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        )
    db.close()
    with ChainStore(db_path, chain_id=CHAIN) as store:
        block = next_block(store, [make_tx(1)])
        refused_commit_changes_nothing(
            db_path, store, block, receipts_for(block), big_changes(), "injected failure"
        )
        assert store.get_state(b"s/00000") is None
        store._conn().execute("DROP TRIGGER injected")
        store.commit_block(block, receipts_for(block), big_changes(), {})
        assert store.get_state(b"s/09999") == b"v9999"
        assert store.latest_height() == 1


# -- bulk loading ---------------------------------------------------------------------


def test_bulk_loaded_state_is_stored_with_its_tree(db_path: Path) -> None:
    entries = {b"bulk/%d" % n: b"v%d" % n for n in range(2_500)}
    counts: list[int] = []
    with ChainStore(db_path) as store:
        nodes = store.bulk_load_state(entries.items(), batch=1_000, progress=counts.append)
        assert counts == [1_000, 2_000, 2_500]
        assert tree_root(nodes) == state_root_of(entries)
        store.initialise(CHAIN, GENESIS_HASH, genesis_block(), {}, nodes)
        assert store.load_state() == dict(sorted(entries.items()))
        assert store.state.all_tree_nodes() == nodes
        with pytest.raises(StoreError, match="only for a store not initialised yet"):
            store.bulk_load_state([(b"late", b"1")])
        assert store.get_state(b"late") is None


# -- a store joined from a snapshot: base height and backfill ------------------------


def chain_of(length: int) -> list[Block]:
    """Blocks 0 .. length-1, each linked to the one before by hash."""
    blocks = [genesis_block()]
    for height in range(1, length):
        blocks.append(make_block(height, block_hash(blocks[-1].header), [make_tx(height)]))
    return blocks


def joined_store(path: Path, chain: Sequence[Block], base: int) -> ChainStore:
    store = ChainStore(path, chain_id=CHAIN, genesis_hash=GENESIS_HASH)
    store.initialise_from_snapshot(CHAIN, GENESIS_HASH, chain[base], state=[(b"acct/alice", b"7")])
    return store


def test_a_store_from_genesis_has_base_height_zero(db_path: Path) -> None:
    with new_store(db_path) as store:
        commit_next(store)
        assert store.base_height() == 0


def test_initialise_from_holds_the_base_block_and_its_state(db_path: Path) -> None:
    chain = chain_of(6)
    with joined_store(db_path, chain, 4) as store:
        assert store.base_height() == 4
        assert store.latest_height() == 4
        assert store.latest_block() == chain[4]
        assert store.state_root() == chain[4].header.state_root
        assert store.load_state() == {b"acct/alice": b"7"}
        assert store.block_at(3) is None
        assert store.block_at(0) is None
        assert list(store.blocks()) == [chain[4]]
        assert store.block_ids([0, 3, 4]) == {
            4: (block_hash(chain[4].header), chain[4].header.state_root)
        }
        store.commit_block(chain[5], receipts_for(chain[5]), {b"acct/bob": b"1"}, {})
        assert [b.header.height for b in store.blocks(0)] == [4, 5]
        assert store.tx_location(tx_id(chain[5].txs[0])) == (5, 0)
    with ChainStore(db_path, chain_id=CHAIN, genesis_hash=GENESIS_HASH) as reopened:
        assert (reopened.base_height(), reopened.latest_height()) == (4, 5)


def test_initialise_from_refuses_a_second_chain_and_another_chain_id(db_path: Path) -> None:
    chain = chain_of(3)
    with ChainStore(db_path) as store:
        with pytest.raises(StoreError, match="is for chain 'other-chain'"):
            store.initialise_from_snapshot(
                CHAIN, GENESIS_HASH, make_block(2, ZERO_HASH, chain="other-chain"), state=[]
            )
        assert not store.is_initialised
        store.initialise_from_snapshot(CHAIN, GENESIS_HASH, chain[2], state=[])
        with pytest.raises(StoreError, match="already holds chain"):
            store.initialise_from_snapshot(CHAIN, GENESIS_HASH, chain[1], state=[])


def refused_chunk() -> Iterator[tuple[bytes, bytes]]:
    """Entries of more than one write batch, then a chunk that fails its check."""
    for n in range(5):
        yield b"acct/%d" % n, b"1"
    raise StoreError("chunk 3 of the snapshot fails its check")


@pytest.mark.parametrize(
    ("state", "match"),
    [
        (refused_chunk(), "chunk 3 of the snapshot"),
        ([(b"k", b"1"), (b"k", b"2")], "holds a key twice"),
        ([(b"k", "text")], "must be bytes"),
    ],
)
def test_a_snapshot_whose_state_fails_writes_nothing(
    db_path: Path, state: Iterable[tuple[bytes, bytes]], match: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_store_module, "_SNAPSHOT_BATCH", 2)
    with ChainStore(db_path) as store:
        before = dump(db_path)
        with pytest.raises(StoreError, match=match):
            store.initialise_from_snapshot(CHAIN, GENESIS_HASH, chain_of(3)[2], state=state)
        assert not store.is_initialised
        assert dump(db_path) == before


def test_a_snapshot_is_stored_by_cell_with_its_tree(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written in batches (here of 3) in one transaction, keyed by cell, with the
    tree's upper tier given: the store's state opens as it would after a commit."""
    monkeypatch.setattr(chain_store_module, "_SNAPSHOT_BATCH", 3)
    entries = {b"snap/%d" % n: b"v%d" % n for n in range(20)}
    rows = sorted((state_cell_of(k), k, v) for k, v in entries.items())
    nodes = tree_nodes_of(cell_roots(rows))
    base = make_block(7, ZERO_HASH, state_root=tree_root(nodes))
    with ChainStore(db_path) as store:
        assert store.get_state(b"snap/3") is None
        store.initialise_from_snapshot(
            CHAIN, GENESIS_HASH, base, state=[(k, v) for _, k, v in rows], tree_nodes=nodes
        )
        assert store.get_state(b"snap/3") == b"v3"  # not the absence read before
    with ChainStore(db_path, chain_id=CHAIN) as store:
        assert store.state.all_tree_nodes() == nodes
        assert tree_root(store.state.all_tree_nodes()) == state_root_of(entries)
        assert store.load_state() == dict(sorted(entries.items()))
        for cell, key, value in rows:
            assert (key, value) in store.state.cell_entries(cell)
        assert (store.base_height(), store.state_root()) == (7, base.header.state_root)


def test_backfill_inserts_linked_blocks_down_to_genesis(db_path: Path) -> None:
    chain = chain_of(5)
    with joined_store(db_path, chain, 4) as store:
        for height in (3, 2, 1, 0):
            store.insert_past_block(chain[height])
            assert store.base_height() == height
        assert list(store.blocks(0)) == chain
        assert store.latest_height() == 4
        with pytest.raises(StoreError, match="holds every block down to genesis"):
            store.insert_past_block(chain[0])


def test_backfill_refuses_a_block_that_is_not_linked(db_path: Path) -> None:
    chain = chain_of(5)
    forged = make_block(3, block_hash(chain[2].header), state_root=sha256(b"forged"))
    with joined_store(db_path, chain, 4) as store:
        before = dump(db_path)
        with pytest.raises(StoreError, match=r"block 4 names .* as its parent"):
            store.insert_past_block(forged)
        with pytest.raises(StoreError, match="the next past block to insert is 3"):
            store.insert_past_block(chain[2])
        with pytest.raises(StoreError, match="is for chain 'other-chain'"):
            store.insert_past_block(make_block(3, ZERO_HASH, chain="other-chain"))
        assert dump(db_path) == before
        assert store.base_height() == 4
