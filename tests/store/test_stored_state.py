"""StoredState: the chain store's state as a StateBackend, read through a small cache,
answers as the in-memory backend does, block after block."""

from __future__ import annotations

import itertools
import signal
import sqlite3
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.app import (
    STATE_BUCKET_LEVEL,
    MemoryBackend,
    State,
    TreeNode,
    state_cell_of,
    state_root_of,
)
from medchain.store import ChainStore, StoreError, cell_roots, tree_nodes_of, tree_root
from medchain.types import block_hash
from tests.app.reference_state import ReferenceState
from tests.store.test_chain_store import CHAIN, GENESIS_HASH, genesis_block, make_block, next_block
from tests.waiting import wait_until

KEYS = [b"k%d" % n for n in range(40)]
changes_strategy = st.dictionaries(
    st.sampled_from(KEYS), st.none() | st.binary(max_size=8), max_size=12
)


def nodes_of(backend: MemoryBackend) -> list[TreeNode]:
    rows = sorted((state_cell_of(k), k, v) for k, v in backend.entries())
    return tree_nodes_of(cell_roots(rows))


def node_changes(
    before: list[TreeNode], after: list[TreeNode]
) -> dict[tuple[int, int], bytes | None]:
    old = {(level, index): hash_ for level, index, hash_ in before}
    new = {(level, index): hash_ for level, index, hash_ in after}
    changes: dict[tuple[int, int], bytes | None] = {at: None for at in old.keys() - new.keys()}
    changes.update({at: hash_ for at, hash_ in new.items() if old.get(at) != hash_})
    return changes


def open_store(genesis: dict[bytes, bytes], cache_bytes: int) -> ChainStore:
    store = ChainStore(Path(":memory:"), state_cache_bytes=cache_bytes)
    store.initialise(
        CHAIN, GENESIS_HASH, genesis_block(), genesis, nodes_of(MemoryBackend(genesis))
    )
    return store


def commit(store: ChainStore, reference: MemoryBackend, changes: dict[bytes, bytes | None]) -> None:
    before = nodes_of(reference)
    reference.apply(changes)
    block = next_block(store)
    store.commit_block(block, [], changes, node_changes(before, nodes_of(reference)))


def assert_same(store: ChainStore, reference: MemoryBackend) -> None:
    backend = store.state
    for key in KEYS:
        assert backend.get(key) == reference.get(key)
    for cell in {state_cell_of(k) for k in KEYS}:
        assert backend.cell_entries(cell) == reference.cell_entries(cell)
    assert list(backend.entries()) == list(reference.entries())
    assert backend.all_tree_nodes() == nodes_of(reference)
    assert backend.tree_nodes() == [n for n in nodes_of(reference) if n[0] >= STATE_BUCKET_LEVEL]
    assert tree_root(backend.tree_nodes()) == state_root_of(dict(reference.entries()))


@settings(max_examples=40)
@given(st.sampled_from([0, 300, 1 << 20]), st.lists(changes_strategy, max_size=8))
def test_reads_follow_the_reference_block_after_block(
    cache_bytes: int, blocks: list[dict[bytes, bytes | None]]
) -> None:
    genesis = {KEYS[0]: b"g0", KEYS[1]: b"g1"}
    reference = MemoryBackend(genesis)
    with open_store(genesis, cache_bytes) as store:
        assert_same(store, reference)
        for changes in blocks:
            commit(store, reference, changes)
            assert_same(store, reference)
            assert store.state.cache.size_bytes <= cache_bytes


def test_a_read_after_a_commit_sees_the_new_value(tmp_path: Path) -> None:
    reference = MemoryBackend({b"a": b"1"})
    with open_store({b"a": b"1"}, 1 << 20) as store:
        cell = state_cell_of(b"a")
        assert store.state.get(b"a") == b"1"
        assert store.state.get(b"b") is None
        assert store.state.cell_entries(cell) == [(b"a", b"1")]
        commit(store, reference, {b"a": b"2", b"b": b"3"})
        assert store.get_state(b"a") == b"2"
        assert store.state.get(b"b") == b"3"
        assert store.state.cell_entries(cell) == reference.cell_entries(cell)
        commit(store, reference, {b"a": None})
        assert store.state.get(b"a") is None
        assert store.state.cell_entries(cell) == reference.cell_entries(cell)


def test_a_refused_commit_leaves_the_cache_as_the_disk(tmp_path: Path) -> None:
    with open_store({b"a": b"1"}, 1 << 20) as store:
        assert store.state.get(b"a") == b"1"
        wrong = next_block(store)
        store.commit_block(wrong, [], {}, {})
        with pytest.raises(StoreError, match="next block to commit is 2"):
            store.commit_block(wrong, [], {b"a": b"2"}, {})
        assert store.state.get(b"a") == b"1"


def test_bad_tree_node_values_are_refused() -> None:
    with open_store({}, 1_000) as store:
        with pytest.raises(StoreError, match=r"node \(0, 1\) must be bytes or None"):
            store.commit_block(next_block(store), [], {}, {(0, 1): "text"})  # type: ignore[dict-item]
        assert store.state.all_tree_nodes() == []


def _clustered_keys(cells: int, per_cell: int) -> list[bytes]:
    """Keys that share cells, so blocks edit cells holding many entries."""
    found: dict[int, list[bytes]] = {}
    full: list[list[bytes]] = []
    for n in itertools.count():
        key = b"c%d" % n
        keys = found.setdefault(state_cell_of(key), [])
        keys.append(key)
        if len(keys) == per_cell:
            full.append(keys)
            if len(full) == cells:
                break
    return [key for keys in full for key in keys]


POOL = _clustered_keys(3, 5) + [b"s%d" % n for n in range(40)]
block_strategy = st.lists(
    st.tuples(st.sampled_from(POOL), st.none() | st.binary(min_size=1, max_size=24)),
    max_size=25,
)


@settings(max_examples=30)
@given(st.lists(block_strategy, min_size=1, max_size=12), st.integers(0, 3))
def test_a_state_over_a_small_cache_matches_the_in_memory_reference(
    blocks: list[list[tuple[bytes, bytes | None]]], restart_every: int
) -> None:
    """Block after block: the same pending and committed roots and the same values as
    the state as medchain kept it in memory, with a cache far smaller than the state,
    across restarts (a new State over the same store)."""
    genesis = {key: b"genesis-" + key for key in POOL[::2]}
    reference = ReferenceState(genesis)
    with ChainStore(Path(":memory:"), state_cache_bytes=600) as store:
        initial = State(genesis)
        store.initialise(
            CHAIN, GENESIS_HASH, genesis_block(), initial.committed(), initial.tree_nodes()
        )
        state = State(store.state, leaf_cache=4)
        for number, writes in enumerate(blocks, start=1):
            for target in (state, reference):
                target.begin_block()
                for key, value in writes:
                    target.delete(key) if value is None else target.set(key, value)
            assert state.pending_root() == reference.pending_root()
            assert state.end_block() == reference.end_block()
            assert state.root() == reference.root()
            delta = state.unpersisted()
            store.commit_block(next_block(store), [], delta.changes, delta.nodes)
            state.persisted()
            assert store.state.cache.size_bytes <= 600
            if restart_every and number % restart_every == 0:
                state = State(store.state, leaf_cache=4)
                state.check_tree()
            assert state.root() == reference.root()
            assert all(state.get(key) == reference.get(key) for key in POOL)
        assert dict(state.entries()) == reference.committed()
        assert store.load_state() == reference.committed()


# -- SIGKILL ----------------------------------------------------------------------------

SIGKILL_GENESIS = {b"genesis": b"0"}


def block_changes(height: int) -> dict[bytes, bytes | None]:
    """What block `height` of the SIGKILL chain writes: new keys, rewrites of the last
    block's, deletes of the one before's. A function of the height, so the parent can
    replay the stored blocks."""
    changes: dict[bytes, bytes | None] = {b"h%d/%d" % (height, i): b"v" * 20 for i in range(1_500)}
    changes.update({b"h%d/%d" % (height - 1, i): b"w%d" % height for i in range(300)})
    changes.update({b"h%d/%d" % (height - 2, i): None for i in range(300, 500)})
    return {key: changes[key] for key in sorted(changes)}


def run_sigkill_chain(path: Path) -> None:
    """The child: open or create the store, then commit blocks until killed."""
    store = ChainStore(path, chain_id=CHAIN, state_cache_bytes=64 * 1024)
    if not store.is_initialised:
        initial = State(SIGKILL_GENESIS)
        store.initialise(
            CHAIN, GENESIS_HASH, genesis_block(), initial.committed(), initial.tree_nodes()
        )
    state = State(store.state)
    while True:
        block_number = store.latest_height() + 1
        state.begin_block()
        for key, value in block_changes(block_number).items():
            state.delete(key) if value is None else state.set(key, value)
        state.end_block()
        tip = store.latest_block()
        block = make_block(block_number, block_hash(tip.header), state_root=state.root())
        delta = state.unpersisted()
        store.commit_block(block, [], delta.changes, delta.nodes)
        state.persisted()


def check_reopened(path: Path) -> int:
    """The store after a kill: its tree agrees with itself and the tip's state root,
    and its entries are a replay of the stored blocks. Returns the tip's height."""
    with ChainStore(path, chain_id=CHAIN) as store:
        state = State(store.state)
        state.check_tree()
        tip = store.latest_block()
        assert state.root() == tip.header.state_root
        reference = ReferenceState(SIGKILL_GENESIS)
        for height in range(1, tip.header.height + 1):
            reference.begin_block()
            for key, value in block_changes(height).items():
                reference.delete(key) if value is None else reference.set(key, value)
            reference.end_block()
        assert dict(state.entries()) == reference.committed()
        assert reference.root() == tip.header.state_root
        return tip.header.height


def stored_height(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'latest_height'").fetchone()
        return -1 if row is None else int(row[0])
    except sqlite3.OperationalError:  # not created yet
        return -1
    finally:
        db.close()


def reached(path: Path, height: int) -> bool:
    return stored_height(path) >= height


@pytest.mark.slow
def test_a_store_killed_while_committing_reopens_at_a_consistent_tip(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    child = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parents[2])!r}); "
        "from pathlib import Path; "
        "from tests.store.test_stored_state import run_sigkill_chain; "
        f"run_sigkill_chain(Path({str(path)!r}))"
    )
    tip = 0
    for rounds in range(3):
        proc = subprocess.Popen([sys.executable, "-c", child])
        try:
            target = tip + 2 + rounds  # a different point in the loop each time
            wait_until(partial(reached, path, target), what=f"height {target}")
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL
        reopened = check_reopened(path)
        assert reopened >= target
        tip = reopened


def test_a_commit_by_another_store_on_the_file_is_seen(tmp_path: Path) -> None:
    """A second ChainStore on the same file (another process's, say) writes: what this
    one cached is dropped, not served stale."""
    path = tmp_path / "chain.sqlite"
    reference = MemoryBackend({b"a": b"1"})
    with ChainStore(path) as reader:
        reader.initialise(CHAIN, GENESIS_HASH, genesis_block(), {b"a": b"1"}, nodes_of(reference))
        cell = state_cell_of(b"a")
        assert reader.state.get(b"a") == b"1"
        assert reader.state.cell_entries(cell) == [(b"a", b"1")]
        with ChainStore(path, chain_id=CHAIN) as writer:
            commit(writer, reference, {b"a": b"2"})
        assert reader.state.get(b"a") == b"2"
        assert reader.state.cell_entries(cell) == [(b"a", b"2")]


def test_upkeep_by_another_connection_keeps_the_cache(tmp_path: Path) -> None:
    """The store's upkeep commits on its own connection (free pages returned) without
    changing the chain: what this store cached stays, as long as the tip is the one
    it last wrote or saw."""
    path = tmp_path / "chain.sqlite"
    reference = MemoryBackend({b"a": b"1"})
    with ChainStore(path) as store:
        store.initialise(CHAIN, GENESIS_HASH, genesis_block(), {b"a": b"1"}, nodes_of(reference))
        commit(store, reference, {b"a": b"2"})
        assert store.state.get(b"absent") is None  # cached as absent
        other = sqlite3.connect(path)  # a commit that changes no row of the chain
        with other:
            other.execute("CREATE TABLE upkeep_probe (x)")
        with other:
            other.execute("DROP TABLE upkeep_probe")
        other.close()
        assert store.state.get(b"a") == b"2"  # notices the other connection's commit
        assert store.state.cache.cell(state_cell_of(b"absent")) == ()  # still cached


def test_the_sole_writer_reads_its_own_commits_without_asking_about_others(
    tmp_path: Path,
) -> None:
    """A running node's store (`sole_writer`) keeps its cache by its own commits only:
    its state reads run no `PRAGMA data_version`, and still see every block it wrote."""
    reference = MemoryBackend({b"a": b"1"})
    with ChainStore(tmp_path / "chain.sqlite", sole_writer=True) as store:
        store.initialise(CHAIN, GENESIS_HASH, genesis_block(), {b"a": b"1"}, nodes_of(reference))
        statements: list[str] = []
        store._conn().set_trace_callback(statements.append)
        assert store.state.get(b"a") == b"1"
        commit(store, reference, {b"a": b"2", b"b": b"3"})
        assert store.state.get(b"a") == b"2"
        assert store.state.get(b"b") == b"3"
        assert store.state.get(b"absent") is None
        assert statements, "the trace saw the commit's statements"
        assert not [s for s in statements if "data_version" in s]
