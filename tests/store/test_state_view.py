"""StateView: a fixed view of the tip and its state while blocks keep committing."""

from __future__ import annotations

from pathlib import Path

import pytest

from medchain.app import state_cell_of
from medchain.store import ChainStore, StoreError
from medchain.types import block_hash
from tests.node.snapshotchain import CHAIN, SnapChain, entries


def test_the_view_keeps_its_height_while_blocks_commit(tmp_path: Path) -> None:
    chain = SnapChain(tmp_path / "chain.sqlite", entries(50))
    chain.commit({b"k/1": None, b"new": b"1"})
    at_view = dict(chain.state)
    with chain.store.state_view() as view:
        chain.commit({b"k/2": None, b"later": b"2"})
        chain.commit({b"new": b"changed"})
        assert (view.chain_id, view.height) == (CHAIN, 1)
        assert view.block_hash == block_hash(chain.blocks[1].header)
        assert view.state_root == chain.blocks[1].header.state_root
        rows = list(view.cell_entries())
    assert {key: value for _, key, value in rows} == at_view
    assert len(rows) == len(at_view)
    assert [(b, k) for b, k, _ in rows] == sorted((state_cell_of(k), k) for k in at_view)
    assert all(cell == state_cell_of(key) for cell, key, _ in rows)


def test_a_closed_view_refuses_reads(tmp_path: Path) -> None:
    chain = SnapChain(tmp_path / "chain.sqlite", entries(3))
    view = chain.store.state_view()
    view.close()
    with pytest.raises(StoreError, match="closed"):
        list(view.cell_entries())


def test_an_in_memory_or_empty_store_has_no_view(tmp_path: Path) -> None:
    in_memory = SnapChain(Path(":memory:"), entries(3))
    with pytest.raises(StoreError, match="in-memory store"):
        in_memory.store.state_view()
    with (
        ChainStore(tmp_path / "empty.sqlite") as empty,
        pytest.raises(StoreError, match="initialise"),
    ):
        empty.state_view()


def test_the_view_reads_the_state_in_table_order_without_a_sort(tmp_path: Path) -> None:
    """One pass over the state table in its key order (cell, key): SQLite plans no
    sort (a temporary B-tree) for any statement the view runs."""
    chain = SnapChain(tmp_path / "chain.sqlite", entries(300))
    statements: list[str] = []
    with chain.store.state_view() as view:
        db = view._conn()
        db.set_trace_callback(statements.append)
        rows = list(view.cell_entries())
        db.set_trace_callback(None)
        plans = [db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall() for sql in statements]
    assert len(rows) == 300
    assert any("FROM state" in sql for sql in statements)
    assert plans and all("TEMP B-TREE" not in str(plan) for plan in plans)
