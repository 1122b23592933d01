"""The committed state as the chain store holds it: the `StateBackend` a node's `State`
reads through, and the rows a block writes.

Entries live in `state(cell, key, value)`, keyed by cell first so the entries the
state tree hashes together are one range read; the tree's stored nodes (cell roots at
level 0, the tier from the bucket roots up at levels 4 to 20) live in
`state_tree(level, idx, hash)`, so a bucket's cell roots are one range read too.
Reads go through the store's `StateCache`; writes happen only in the store's block
transaction (`write_state`, `write_tree`).
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from operator import itemgetter

from medchain.app import STATE_BUCKET_LEVEL, TreeNode, state_cell_of
from medchain.store._errors import StoreError
from medchain.store._state_cache import StateCache
from medchain.store._tree_nodes import cell_roots, tree_nodes_of

StateRow = tuple[int, bytes, bytes]
"""(cell, key, value) as stored."""

_EXPORT_BATCH = 4_096

STATE_TABLES = (
    "CREATE TABLE IF NOT EXISTS state ("
    " cell INTEGER NOT NULL,"
    " key BLOB NOT NULL,"
    " value BLOB NOT NULL,"
    " PRIMARY KEY (cell, key)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS state_tree ("
    " level INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL,"
    " PRIMARY KEY (level, idx)) WITHOUT ROWID",
)
"""Schema 3's state tables: entries by (cell = `state_cell_of(key)`, key), and the
state tree's stored nodes by (level, index)."""


class StoredState:
    """A `medchain.app.StateBackend` over a chain store's state tables. Belongs to the
    store's thread, as the store does."""

    def __init__(
        self,
        conn: Callable[[], sqlite3.Connection],
        cache: StateCache,
        tip: Callable[[], object],
        *,
        sole_writer: bool = False,
    ) -> None:
        """`tip` reads what identifies the stored chain's tip (its height and state
        root): the state changes only with it. `sole_writer`: no other connection
        commits blocks to the file, so reads need not ask whether one did."""
        self._conn = conn
        self._sole_writer = sole_writer
        self.cache = cache
        self._tip = tip
        self._data_version: int | None = None
        self._seen_tip: object = None

    def written(self, changes: Mapping[bytes, bytes | None], tip: object) -> None:
        """This store committed `changes`, leaving `tip`: keep the cache up to date."""
        self.cache.apply(changes)
        self._seen_tip = tip

    def reset(self, tip: object) -> None:
        """This store initialised the chain at `tip`: nothing cached before holds."""
        self.cache.clear()
        self._seen_tip = tip

    def _check_cache(self) -> None:
        """Forget the cache when another connection (another process's store, say)
        committed a block to the file since the last read: only this store's own
        commits keep it up to date. Another connection's commit that left the tip as
        it was (the store's upkeep returning free pages) keeps it. The sole writer skips
        the question (a statement on every state read, a tenth of a signed read)."""
        if self._sole_writer:
            return
        (version,) = self._conn().execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._data_version = version
            tip = self._tip()
            if tip != self._seen_tip:
                self.cache.clear()
                self._seen_tip = tip

    def get(self, key: bytes) -> bytes | None:
        """From the key's cell, cached or read and cached (a few entries: the state
        tree reads the same cell when the block changes the key)."""
        self._check_cache()
        entries = self._cell(state_cell_of(key))
        at = bisect.bisect_left(entries, key, key=itemgetter(0))
        return entries[at][1] if at < len(entries) and entries[at][0] == key else None

    def cell_entries(self, cell: int) -> list[tuple[bytes, bytes]]:
        self._check_cache()
        return list(self._cell(cell))

    def _cell(self, cell: int) -> tuple[tuple[bytes, bytes], ...]:
        cached = self.cache.cell(cell)
        if cached is None:
            cached = tuple(  # BLOB columns come back as bytes: no copy needed
                self._conn()
                .execute("SELECT key, value FROM state WHERE cell = ? ORDER BY key", (cell,))
                .fetchall()
            )
            self.cache.keep_cell(cell, cached)
        return cached

    def cell_roots(self, bucket: int) -> dict[int, bytes]:
        first = bucket << STATE_BUCKET_LEVEL
        rows = self._conn().execute(
            "SELECT idx, hash FROM state_tree WHERE level = 0 AND idx >= ? AND idx < ?",
            (first, first + (1 << STATE_BUCKET_LEVEL)),
        )
        return {int(cell): bytes(hash_) for cell, hash_ in rows}

    def tree_nodes(self) -> list[TreeNode]:
        return self._nodes_from(STATE_BUCKET_LEVEL)

    def all_tree_nodes(self) -> list[TreeNode]:
        """Every stored node, the cell roots too, in (level, index) order (a check)."""
        return self._nodes_from(0)

    def _nodes_from(self, level: int) -> list[TreeNode]:
        rows = self._conn().execute(
            "SELECT level, idx, hash FROM state_tree WHERE level >= ? ORDER BY level, idx",
            (level,),
        )
        return [(int(lv), int(index), bytes(hash_)) for lv, index, hash_ in rows]

    def entries(self) -> Iterator[tuple[bytes, bytes]]:
        """Every entry in key order, as the state was when the first one is read (SQLite
        sorts them all before handing out the first)."""
        cursor = self._conn().execute("SELECT key, value FROM state ORDER BY key")
        try:
            while rows := cursor.fetchmany(_EXPORT_BATCH):
                for key, value in rows:
                    yield bytes(key), bytes(value)
        finally:
            cursor.close()


def state_rows(
    changes: Mapping[bytes, bytes | None], *, allow_delete: bool
) -> tuple[list[StateRow], list[tuple[int, bytes]]]:
    """Split changes into (upserts, deletes), each in ascending key order, so every node
    writes the same rows in the same order. Anything but bytes is refused: SQLite would
    store a str as TEXT and hand it back as a str."""
    for key in changes:
        if not isinstance(key, bytes):
            raise StoreError(f"state keys must be bytes, got {type(key).__name__} {key!r}")
    upserts: list[StateRow] = []
    deletes: list[tuple[int, bytes]] = []
    for key in sorted(changes):
        value = changes[key]
        if isinstance(value, bytes):
            upserts.append((state_cell_of(key), key, value))
        elif value is None and allow_delete:
            deletes.append((state_cell_of(key), key))
        else:
            raise StoreError(
                f"state value for key {key.hex()} must be bytes"
                + (" or None (delete)" if allow_delete else "")
                + f", got {type(value).__name__}"
            )
    return upserts, deletes


def tree_rows(
    changes: Mapping[tuple[int, int], bytes | None],
) -> tuple[list[TreeNode], list[tuple[int, int]]]:
    """Split tree node changes into (upserts, deletes) in (level, index) order."""
    upserts: list[TreeNode] = []
    deletes: list[tuple[int, int]] = []
    for (level, index), hash_ in sorted(changes.items()):
        if hash_ is None:
            deletes.append((level, index))
        elif isinstance(hash_, bytes):
            upserts.append((level, index, hash_))
        else:
            raise StoreError(
                f"state tree node ({level}, {index}) must be bytes or None (delete), "
                f"got {type(hash_).__name__}"
            )
    return upserts, deletes


def write_state(
    db: sqlite3.Connection, upserts: list[StateRow], deletes: list[tuple[int, bytes]]
) -> None:
    _write_rows(db, "state", ("cell", "key"), "value", upserts, deletes)


def bulk_write_state(
    db: sqlite3.Connection,
    entries: Iterable[tuple[bytes, bytes]],
    batch: int,
    progress: Callable[[int], None] | None = None,
) -> None:
    """Insert `entries` (each key once), `batch` at a time so they are never all in
    memory: each batch in a transaction of its own, or, when the caller holds one, all
    of them in it (they land with the rest of it, or none does). `progress` gets the
    count written so far after each batch."""
    own_transactions = not db.in_transaction
    written = 0
    chunks = iter(entries)
    while chunk := list(itertools.islice(chunks, batch)):
        upserts = state_rows(dict(chunk), allow_delete=False)[0]
        if len(upserts) != len(chunk):
            raise StoreError("the state to write holds a key twice; nothing of it was written")
        with _batch_transaction(db, own_transactions):
            write_state(db, upserts, [])
        written += len(chunk)
        if progress is not None:
            progress(written)


@contextlib.contextmanager
def _batch_transaction(db: sqlite3.Connection, own: bool) -> Iterator[None]:
    if not own:
        yield
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise


def cell_rows(db: sqlite3.Connection) -> Iterator[StateRow]:
    """Every stored entry as (cell, key, value), cell by cell and each in key order:
    the table's own order, so one pass over it and no sort."""
    cursor = db.execute("SELECT cell, key, value FROM state ORDER BY cell, key")
    try:
        while rows := cursor.fetchmany(_EXPORT_BATCH):
            yield from ((int(b), bytes(k), bytes(v)) for b, k, v in rows)
    finally:
        cursor.close()


def stored_tree_nodes(db: sqlite3.Connection) -> list[TreeNode]:
    """The tree's stored nodes over every stored entry, computed from them."""
    return tree_nodes_of(cell_roots(cell_rows(db)))


def write_tree(
    db: sqlite3.Connection, upserts: list[TreeNode], deletes: list[tuple[int, int]]
) -> None:
    _write_rows(db, "state_tree", ("level", "idx"), "hash", upserts, deletes)


def _write_rows(
    db: sqlite3.Connection,
    table: str,
    keys: tuple[str, str],
    value: str,
    upserts: Sequence[tuple[object, object, bytes]],
    deletes: Sequence[tuple[object, object]],
) -> None:
    """Delete, then insert or replace, rows keyed by two columns, in the order given."""
    first, second = keys
    db.executemany(f"DELETE FROM {table} WHERE {first} = ? AND {second} = ?", deletes)
    db.executemany(
        f"INSERT INTO {table}({first}, {second}, {value}) VALUES (?, ?, ?) "
        f"ON CONFLICT({first}, {second}) DO UPDATE SET {value} = excluded.{value}",
        upserts,
    )
