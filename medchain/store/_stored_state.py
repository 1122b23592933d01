"""The committed state as the chain store holds it: the `StateBackend` a node's `State`
reads through, and the rows a block writes.

Entries live in `state(bucket, key, value)`, keyed by bucket first so the entries the
state tree hashes together are one range read; the tree's upper tier lives in
`state_tree(level, idx, hash)`. Reads go through the store's `StateCache`; writes
happen only in the store's block transaction (`write_state`, `write_tree`).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from medchain.app import TreeNode, state_bucket_of
from medchain.store._errors import StoreError
from medchain.store._state_cache import StateCache
from medchain.store._tree_nodes import bucket_roots, upper_tier

StateRow = tuple[int, bytes, bytes]
"""(bucket, key, value) as stored."""

_EXPORT_BATCH = 4_096

STATE_TABLES = (
    "CREATE TABLE IF NOT EXISTS state ("
    " bucket INTEGER NOT NULL,"
    " key BLOB NOT NULL,"
    " value BLOB NOT NULL,"
    " PRIMARY KEY (bucket, key)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS state_tree ("
    " level INTEGER NOT NULL,"
    " idx INTEGER NOT NULL,"
    " hash BLOB NOT NULL,"
    " PRIMARY KEY (level, idx)) WITHOUT ROWID",
)
"""Schema 2's state tables: entries by (bucket = `state_bucket_of(key)`, key), and the
state tree's upper tier by (level, index)."""


class StoredState:
    """A `medchain.app.StateBackend` over a chain store's state tables. Belongs to the
    store's thread, as the store does."""

    def __init__(
        self,
        conn: Callable[[], sqlite3.Connection],
        cache: StateCache,
        tip: Callable[[], object],
    ) -> None:
        """`tip` reads what identifies the stored chain's tip (its height and state
        root): the state changes only with it."""
        self._conn = conn
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
        it was (the store's upkeep returning free pages) keeps it."""
        (version,) = self._conn().execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._data_version = version
            tip = self._tip()
            if tip != self._seen_tip:
                self.cache.clear()
                self._seen_tip = tip

    def get(self, key: bytes) -> bytes | None:
        self._check_cache()
        found, value = self.cache.entry(key)
        if found:
            return value
        row = (
            self._conn()
            .execute(
                "SELECT value FROM state WHERE bucket = ? AND key = ?", (state_bucket_of(key), key)
            )
            .fetchone()
        )
        value = None if row is None else bytes(row[0])
        self.cache.keep_entry(key, value)
        return value

    def bucket_entries(self, bucket: int) -> list[tuple[bytes, bytes]]:
        self._check_cache()
        cached = self.cache.bucket(bucket)
        if cached is None:
            cached = tuple(  # BLOB columns come back as bytes: no copy needed
                self._conn()
                .execute("SELECT key, value FROM state WHERE bucket = ? ORDER BY key", (bucket,))
                .fetchall()
            )
            self.cache.keep_bucket(bucket, cached)
        return list(cached)

    def tree_nodes(self) -> list[TreeNode]:
        rows = self._conn().execute("SELECT level, idx, hash FROM state_tree ORDER BY level, idx")
        return [(int(level), int(index), bytes(hash_)) for level, index, hash_ in rows]

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
            upserts.append((state_bucket_of(key), key, value))
        elif value is None and allow_delete:
            deletes.append((state_bucket_of(key), key))
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
    _write_rows(db, "state", ("bucket", "key"), "value", upserts, deletes)


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


def bucket_rows(db: sqlite3.Connection) -> Iterator[StateRow]:
    """Every stored entry as (bucket, key, value), bucket by bucket and each in key
    order: the table's own order, so one pass over it and no sort."""
    cursor = db.execute("SELECT bucket, key, value FROM state ORDER BY bucket, key")
    try:
        while rows := cursor.fetchmany(_EXPORT_BATCH):
            yield from ((int(b), bytes(k), bytes(v)) for b, k, v in rows)
    finally:
        cursor.close()


def stored_upper_tier(db: sqlite3.Connection) -> list[TreeNode]:
    """The tree's upper tier over every stored entry, computed from them."""
    return upper_tier(bucket_roots(bucket_rows(db)))


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
