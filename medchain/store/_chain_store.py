"""The chain store: blocks, a transaction index with receipts, and the current state with
its tree's stored nodes, in one SQLite database.

One database, because a block, its receipts and the state it produced must land together
or not at all, and one SQLite transaction gives exactly that. WAL mode, because readers
never block the writer; `synchronous=FULL`, because a commit must return only once it is
on disk, so a committed block survives SIGKILL and power loss.

Threading: a `ChainStore` belongs to the thread that opened it; sqlite3 raises if another
thread touches its connection. A node owns one instance and calls it from one thread.
Another thread or process that wants to read opens its own `ChainStore` on the same file
(WAL lets it read while the node writes); every write re-checks the tip inside its
transaction, so a second writer can never fork the stored chain.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import rlp

from medchain.app import TreeNode
from medchain.store._disk import raise_if_disk_full
from medchain.store._errors import NotFound, StoreError
from medchain.store._maintenance import configure_compaction
from medchain.store._state_cache import StateCache
from medchain.store._state_view import StateView
from medchain.store._stored_state import (
    STATE_TABLES,
    StoredState,
    bulk_write_state,
    state_rows,
    stored_tree_nodes,
    tree_rows,
    write_state,
    write_tree,
)
from medchain.types import (
    Block,
    DecodeError,
    Header,
    Receipt,
    block_hash,
    decode,
    encode,
    tx_id,
    tx_id_of_encoding,
)

T = TypeVar("T")

SCHEMA_VERSION = 5
"""Layout of the tables below, and of the contracts' state in them; bump it (and write
a migration, or refuse the old version with a reason) whenever either changes."""

MAX_HEIGHT = 2**63 - 1
"""The highest height the store can hold: heights are SQLite INTEGERs (signed 64-bit),
and sqlite3 raises OverflowError for a larger int, so lookups answer "not held" for
any height outside 0 to MAX_HEIGHT instead of passing it on."""

_SCHEMA = (
    # `value BLOB` gives the column no type affinity, so SQLite stores ints, text and
    # bytes exactly as given (a TEXT or NUMERIC column would convert chain id "1234").
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS blocks ("
    " height INTEGER PRIMARY KEY,"
    " hash BLOB NOT NULL UNIQUE,"
    " data BLOB NOT NULL)",
    "CREATE TABLE IF NOT EXISTS txs ("
    " id BLOB PRIMARY KEY,"
    " height INTEGER NOT NULL REFERENCES blocks(height) ON DELETE CASCADE,"
    " idx INTEGER NOT NULL,"
    " receipt BLOB NOT NULL,"
    " UNIQUE (height, idx))",
    *STATE_TABLES,
)
_TABLES = frozenset({"meta", "blocks", "txs", "state", "state_tree"})
_BUCKETED_VERSIONS = (1, 2)
_BEFORE_ORGANISATIONS = 3
_BEFORE_PATIENT_RIGHTS = 4
"""Schema 3 held the state the contracts kept before organisations, credentials and
proxies: its devices, scopes, gateways and audit entries lack fields every one now has."""
"""Schemas of stores whose chains committed to the state in 65,536 buckets of entries
(before the state tree's cells): their state roots are not this version's."""

DEFAULT_STATE_CACHE_BYTES = 128 * 2**20
"""Memory for recently read state cells (`StateCache`)."""

_SCHEMA_VERSION = "schema_version"
_CHAIN_ID = "chain_id"
_GENESIS_HASH = "genesis_hash"
_LATEST_HEIGHT = "latest_height"
_STATE_ROOT = "state_root"
_BASE_HEIGHT = "base_height"
"""Height of the lowest block held: absent (0) for a store initialised from genesis."""

_BATCH = 256
"""Blocks fetched per query by `blocks()`: no cursor stays open between yields."""

_BULK_CACHE_KIB = 2**20
"""SQLite's page cache while bulk loading state: 1 GiB, so inserts in hash order do not
go to disk for every page."""

_SNAPSHOT_BATCH = 50_000
"""Entries of a snapshot's state held in memory at a time while it is written."""


class ChainStore:
    """Blocks, transaction receipts and state of one chain in one SQLite file.

    Open it on a file path (e.g. `DIR/chain.sqlite`; created if missing), then either
    `initialise` a new chain from its genesis block or carry on from the stored tip.
    Pass `chain_id` / `genesis_hash` to refuse a database that belongs to another chain.
    `state_cache_bytes` bounds the memory the state's read cache holds. `sole_writer`
    promises that no other connection commits blocks to the file while this store is
    open (a running node's own store: its supervisor runs one node per home), so the
    state cache never needs checking against the file.
    """

    def __init__(
        self,
        path: Path,
        *,
        chain_id: str | None = None,
        genesis_hash: bytes | None = None,
        state_cache_bytes: int = DEFAULT_STATE_CACHE_BYTES,
        sole_writer: bool = False,
    ) -> None:
        self._path = Path(path)
        self._state = StoredState(
            self._conn,
            StateCache(state_cache_bytes),
            lambda: (self._meta(_LATEST_HEIGHT, int), self._meta(_STATE_ROOT, bytes)),
            sole_writer=sole_writer,
        )
        self._expected_chain_id = chain_id
        self._expected_genesis_hash = genesis_hash
        self._chain_id: str | None = None
        self._genesis_hash: bytes | None = None
        if self._path.is_dir():
            raise StoreError(
                f"{self._path} is a directory; pass the database file inside it, "
                f"e.g. {self._path / 'chain.sqlite'}"
            )
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(
                f"cannot open the chain store {self._path}: {exc}; "
                "check the path and its permissions"
            ) from exc
        self._db: sqlite3.Connection | None = db
        try:
            self._configure(db)
            self._open_schema(db)
        except sqlite3.Error as exc:
            self.close()
            raise_if_disk_full(exc, self._path, "the new chain store")
            raise StoreError(
                f"cannot open the chain store {self._path}: {exc}; if the file is not a "
                "medchain chain store, point the node at its own data directory"
            ) from exc
        except BaseException:
            self.close()
            raise

    # -- opening -----------------------------------------------------------------

    def _configure(self, db: sqlite3.Connection) -> None:
        configure_compaction(db)
        (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal" and not self.in_memory:
            raise StoreError(
                f"SQLite refused WAL mode for {self._path} (journal mode is {mode!r}); "
                "keep the data directory on a local filesystem"
            )
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA foreign_keys=ON")

    def _open_schema(self, db: sqlite3.Connection) -> None:
        tables = self._tables(db)
        if not tables:
            with self._transaction() as tx:
                for statement in _SCHEMA:
                    tx.execute(statement)
                tx.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                    (_SCHEMA_VERSION, SCHEMA_VERSION),
                )
            tables = self._tables(db)
        version = self._meta(_SCHEMA_VERSION, int) if "meta" in tables else None
        if version in _BUCKETED_VERSIONS:
            raise StoreError(
                f"{self._path} was written by an earlier medchain (schema version {version}), "
                "whose state root committed to the state in 65,536 buckets of entries; this "
                "version commits to it in 1,048,576 cells and cannot continue that chain: "
                "start a new one in an empty directory (for a devnet: `medchain devnet "
                "down`, then remove its home), and keep this one to read its history with "
                "the release that wrote it"
            )
        if version == _BEFORE_ORGANISATIONS:
            raise StoreError(
                f"{self._path} was written by an earlier medchain (schema version {version}), "
                "from before organisations, credentials and proxies: its contracts' state "
                "(devices, gateways, scopes, audit trails) has fewer fields than this version "
                "reads, and its genesis names no organisations, so nobody could credential "
                "anyone on it. Start a new chain in an empty directory (for a devnet: "
                "`medchain devnet down`, then remove its home), and keep this one to read its "
                "history with the release that wrote it"
            )
        if version == _BEFORE_PATIENT_RIGHTS:
            raise StoreError(
                f"{self._path} was written by an earlier medchain (schema version {version}), "
                "from before consents, key recovery and erasure: its records have no grant "
                "terms and no erasure fields, and its accounts cannot rotate keys. Start a "
                "new chain in an empty directory (for a devnet: `medchain devnet down`, then "
                "remove its home), and keep this one to read its history with the release "
                "that wrote it"
            )
        if version is None or not tables >= _TABLES:
            raise StoreError(
                f"{self._path} is an SQLite database but not a medchain chain store; "
                "point the node at its own data directory"
            )
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{self._path} has schema version {version}, this medchain reads version "
                f"{SCHEMA_VERSION}; run the medchain release that wrote it, or sync this "
                "node again into a new data directory"
            )
        self._load_identity()

    @staticmethod
    def _tables(db: sqlite3.Connection) -> set[str]:
        rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {str(name) for (name,) in rows}

    def _load_identity(self) -> None:
        """Read chain id and genesis hash (fixed once set) and check them against the
        ones the caller expects."""
        chain_id = self._meta(_CHAIN_ID, str)
        if chain_id is None:
            return
        genesis_hash = self._require_meta(_GENESIS_HASH, bytes)
        self._check_identity(chain_id, genesis_hash)
        self._chain_id = chain_id
        self._genesis_hash = genesis_hash
        height = self._require_meta(_LATEST_HEIGHT, int)
        (stored,) = self._conn().execute("SELECT MAX(height) FROM blocks").fetchone()
        if stored != height:
            raise StoreError(
                f"{self._path} is inconsistent: its tip is recorded at height {height} but "
                f"blocks go up to {stored}; restore the data directory from a backup or "
                "sync the node again"
            )

    def _check_identity(self, chain_id: str, genesis_hash: bytes) -> None:
        expected = self._expected_chain_id
        if expected is not None and chain_id != expected:
            raise StoreError(
                f"{self._path} holds chain {chain_id!r}, not {expected!r}; "
                "use a separate data directory for each chain"
            )
        expected_hash = self._expected_genesis_hash
        if expected_hash is not None and genesis_hash != expected_hash:
            raise StoreError(
                f"{self._path} was initialised from genesis {genesis_hash.hex()}, not "
                f"{expected_hash.hex()}; use a separate data directory for each genesis"
            )

    # -- lifecycle ---------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._path

    @property
    def in_memory(self) -> bool:
        """True for `Path(":memory:")`: a throwaway store for tests and simulation."""
        return str(self._path) == ":memory:"

    def close(self) -> None:
        """Close the database; safe to call twice. Committed blocks are already durable."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> ChainStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ChainStore({str(self._path)!r}, chain_id={self._chain_id!r})"

    # -- writing -----------------------------------------------------------------

    def initialise(
        self,
        chain_id: str,
        genesis_hash: bytes,
        genesis_block: Block,
        state: Mapping[bytes, bytes],
        tree_nodes: Iterable[TreeNode],
    ) -> None:
        """Store a new chain: its identity, the genesis block at height 0, the state
        genesis produced and its tree's stored nodes (`State.tree_nodes`).
        `genesis_hash` identifies the genesis document; a node passes it back when
        reopening to make sure it is still on the same chain."""
        if genesis_block.header.height != 0:
            raise StoreError(
                f"the genesis block must be at height 0, not {genesis_block.header.height}; "
                "build it from the genesis document"
            )
        if genesis_block.txs:
            raise StoreError(
                "the genesis block must not carry transactions (there are no receipts "
                "for them); put initial balances and validators in the genesis state"
            )
        rows = state_rows(state, allow_delete=False)[0]
        self._initialise_at(
            chain_id,
            genesis_hash,
            genesis_block,
            lambda db: write_state(db, rows, []),
            tree_nodes,
            "the genesis block",
        )

    def initialise_from_snapshot(
        self,
        chain_id: str,
        genesis_hash: bytes,
        base_block: Block,
        *,
        state: Iterable[tuple[bytes, bytes]],
        tree_nodes: Iterable[TreeNode] = (),
    ) -> None:
        """Store a chain joined from a snapshot, in one transaction: its identity,
        `base_block` (a certified block at height H, checked by the caller) as the first
        block held, the state after it, streamed from `state` (if it raises, e.g. on
        a chunk that fails its check, nothing is written) a batch at a time, and its
        tree's stored nodes `tree_nodes` (read once the state is written: the cell
        roots found checking the chunks, and the tier over the snapshot's bucket
        roots), so the state opens as it would after a commit.
        Blocks above H are committed as usual; older ones come later through
        `insert_past_block`, so `base_height()` is H until the backfill is done. The
        base block's own transactions get no receipts (they were not executed here)."""
        with self._bulk_cache():
            self._initialise_at(
                chain_id,
                genesis_hash,
                base_block,
                lambda db: bulk_write_state(db, state, _SNAPSHOT_BATCH),
                tree_nodes,
                f"block {base_block.header.height}",
            )

    def _initialise_at(
        self,
        chain_id: str,
        genesis_hash: bytes,
        first: Block,
        write_rows: Callable[[sqlite3.Connection], None],
        tree_nodes: Iterable[TreeNode],
        what: str,
    ) -> None:
        header = first.header
        if self.is_initialised:
            raise StoreError(
                f"{self._path} already holds chain {self._chain_id!r}; "
                "reopen it instead, or initialise a new data directory"
            )
        self._check_identity(chain_id, genesis_hash)
        if header.chain_id != chain_id:
            raise StoreError(
                f"{what} is for chain {header.chain_id!r}, not {chain_id!r}; "
                "build it from the same genesis document"
            )
        if not 0 <= header.height <= MAX_HEIGHT:
            raise StoreError(f"{what} has height {header.height}, outside 0 to {MAX_HEIGHT}")
        try:
            with self._transaction() as db:
                if self._meta(_CHAIN_ID, str) is not None:
                    raise StoreError(
                        f"{self._path} was initialised by another process meanwhile; reopen it"
                    )
                db.execute(
                    "INSERT INTO blocks(height, hash, data) VALUES (?, ?, ?)",
                    (header.height, block_hash(header), encode(first)),
                )
                write_rows(db)  # before the nodes: a snapshot's are found as its chunks stream
                nodes = iter(tree_nodes)  # a batch at a time: a million cell roots or more
                while batch := list(itertools.islice(nodes, _SNAPSHOT_BATCH)):
                    write_tree(db, tree_rows({(lv, i): hash_ for lv, i, hash_ in batch})[0], [])
                self._set_meta(
                    db,
                    {
                        _CHAIN_ID: chain_id,
                        _GENESIS_HASH: genesis_hash,
                        _LATEST_HEIGHT: header.height,
                        _BASE_HEIGHT: header.height,
                        _STATE_ROOT: header.state_root,
                    },
                )
        except sqlite3.Error as exc:
            raise self._write_failed(what, exc) from exc
        self._state.reset((header.height, header.state_root))  # "absent" may be cached
        self._chain_id = chain_id
        self._genesis_hash = genesis_hash

    def bulk_load_state(
        self,
        entries: Iterable[tuple[bytes, bytes]],
        *,
        batch: int = 200_000,
        progress: Callable[[int], None] | None = None,
    ) -> list[TreeNode]:
        """Write a large state into a store not initialised yet, `batch` entries per
        transaction (`progress` gets the count so far), and return its tree's stored
        nodes: then `initialise` it with a genesis block of that root, no further
        entries, and those nodes. For building a large store fast (a benchmark)."""
        if self.is_initialised:
            raise StoreError(
                f"{self._path} already holds chain {self._chain_id!r}; bulk loading "
                "state is only for a store not initialised yet"
            )
        db = self._conn()
        try:
            with self._bulk_cache():
                bulk_write_state(db, entries, batch, progress)
                return stored_tree_nodes(db)
        except sqlite3.Error as exc:
            raise_if_disk_full(exc, self._path, "the bulk state")
            raise StoreError(
                f"could not bulk load state into {self._path}: {exc}; the batches "
                "written before stay there, so start again with a new file"
            ) from exc

    @contextmanager
    def _bulk_cache(self) -> Iterator[None]:
        """SQLite's page cache at `_BULK_CACHE_KIB` while a large state is written
        (random inserts then stay in memory), back to what it was after."""
        db = self._conn()
        (pages,) = db.execute("PRAGMA cache_size").fetchone()
        db.execute(f"PRAGMA cache_size = {-_BULK_CACHE_KIB}")
        try:
            yield
        finally:
            db.execute(f"PRAGMA cache_size = {int(pages)}")

    def insert_past_block(self, block: Block) -> None:
        """Store the block just below the base height (the backfill of a store joined
        from a snapshot), if it is the one the held block above names by `prev_hash`:
        a hash link down from a certified block is all the proof an older block needs.
        Its transactions are not indexed (no receipts: it was not executed here)."""
        header = block.header
        height = header.height
        if header.chain_id != self.chain_id:
            raise StoreError(
                f"block {height} is for chain {header.chain_id!r}, this store holds "
                f"{self.chain_id!r}; it does not belong here"
            )
        hash_ = block_hash(header)
        try:
            with self._transaction() as db:
                base = self.base_height()
                if height != base - 1:
                    raise StoreError(
                        f"block {height} is not the one below the base height {base}; "
                        + (
                            "the store holds every block down to genesis"
                            if base == 0
                            else f"the next past block to insert is {base - 1}"
                        )
                    )
                row = db.execute("SELECT data FROM blocks WHERE height = ?", (base,)).fetchone()
                above = self._decode(Block, row[0], f"block {base}").header
                if above.prev_hash != hash_:
                    raise StoreError(
                        f"block {height} hashes to {hash_.hex()} but block {base} names "
                        f"{above.prev_hash.hex()} as its parent; it is not on this chain and "
                        "was not stored"
                    )
                db.execute(
                    "INSERT INTO blocks(height, hash, data) VALUES (?, ?, ?)",
                    (height, hash_, encode(block)),
                )
                self._set_meta(db, {_BASE_HEIGHT: height})
        except sqlite3.Error as exc:
            raise self._write_failed(f"block {height}", exc) from exc

    def commit_block(
        self,
        block: Block,
        receipts: Sequence[Receipt],
        state_changes: Mapping[bytes, bytes | None],
        tree_changes: Mapping[tuple[int, int], bytes | None],
    ) -> None:
        """Append `block` on the tip with the receipts of its transactions (in order),
        the state changes it made (`None` deletes a key) and the state tree's nodes that
        changed ((level, index) -> hash; `None`: now the empty subtree's, no row), in
        one transaction: either all of it is durably stored when this returns, or
        nothing is (and it raises). The state cache sees the changes once stored."""
        header = block.header
        height = header.height
        chain_id = self.chain_id
        if header.chain_id != chain_id:
            raise StoreError(
                f"block {height} is for chain {header.chain_id!r}, this store holds "
                f"{chain_id!r}; it does not belong here"
            )
        ids = [tx_id(tx) for tx in block.txs]
        _check_receipts(height, ids, receipts)
        upserts, deletes = state_rows(state_changes, allow_delete=True)
        node_upserts, node_deletes = tree_rows(tree_changes)
        hash_ = block_hash(header)
        data = encode(block)
        tx_rows = [
            (id_, height, index, encode(receipt))
            for index, (id_, receipt) in enumerate(zip(ids, receipts, strict=True))
        ]
        try:
            with self._transaction() as db:
                self._check_extends_tip(db, height, header.prev_hash)
                db.execute(
                    "INSERT INTO blocks(height, hash, data) VALUES (?, ?, ?)",
                    (height, hash_, data),
                )
                db.executemany(
                    "INSERT INTO txs(id, height, idx, receipt) VALUES (?, ?, ?, ?)", tx_rows
                )
                write_state(db, upserts, deletes)
                write_tree(db, node_upserts, node_deletes)
                self._set_meta(db, {_LATEST_HEIGHT: height, _STATE_ROOT: header.state_root})
        except sqlite3.IntegrityError as exc:
            raise self._duplicate_tx(height, ids) or self._write_failed(
                f"block {height}", exc
            ) from exc
        except sqlite3.Error as exc:
            raise self._write_failed(f"block {height}", exc) from exc
        self._state.written(state_changes, (height, header.state_root))

    def _check_extends_tip(self, db: sqlite3.Connection, height: int, prev_hash: bytes) -> None:
        """Refuse a block that is not the next one on the stored tip; runs under the
        write lock, so it sees the tip any other writer left."""
        tip = self._require_meta(_LATEST_HEIGHT, int)
        if height != tip + 1:
            raise StoreError(
                f"block {height} does not extend the stored tip at height {tip}; "
                f"the next block to commit is {tip + 1}"
            )
        row = db.execute("SELECT hash FROM blocks WHERE height = ?", (tip,)).fetchone()
        tip_hash = bytes(row[0])
        if prev_hash != tip_hash:
            raise StoreError(
                f"block {height} has prev_hash {prev_hash.hex()} but the stored block {tip} "
                f"hashes to {tip_hash.hex()}; it is on another fork and was not stored"
            )

    @staticmethod
    def _set_meta(db: sqlite3.Connection, values: Mapping[str, object]) -> None:
        db.executemany(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            sorted(values.items()),
        )

    def _duplicate_tx(self, height: int, ids: Sequence[bytes]) -> StoreError | None:
        """After a refused commit: name the transaction that was already stored, if any."""
        for id_ in ids:
            location = self.tx_location(id_)
            if location is not None:
                return StoreError(
                    f"transaction {id_.hex()} of block {height} is already stored in block "
                    f"{location[0]}; a transaction can be included only once"
                )
        return None

    def _write_failed(self, what: str, exc: sqlite3.Error) -> StoreError:
        """The error for a refused write: DiskFull when the disk is full."""
        raise_if_disk_full(exc, self._path, what)
        return StoreError(
            f"could not store {what} in {self._path}: {exc}; nothing was written, "
            "check the disk and retry"
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE (take the write lock up front) ... COMMIT, or ROLLBACK on any
        exception, including one raised by our own checks."""
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.rollback()
            raise

    # -- reading -----------------------------------------------------------------

    @property
    def is_initialised(self) -> bool:
        """Whether the store holds a chain (else `initialise` it first)."""
        if self._chain_id is None:
            self._load_identity()
        return self._chain_id is not None

    @property
    def chain_id(self) -> str:
        self._require_initialised()
        assert self._chain_id is not None
        return self._chain_id

    @property
    def genesis_hash(self) -> bytes:
        self._require_initialised()
        assert self._genesis_hash is not None
        return self._genesis_hash

    def latest_height(self) -> int:
        """Height of the tip, or -1 while the store holds no chain."""
        height = self._meta(_LATEST_HEIGHT, int)
        return -1 if height is None else height

    def base_height(self) -> int:
        """Height of the lowest block held: 0 once the store holds every block down to
        genesis; H for a store joined from a snapshot at H until the backfill reaches
        genesis. Blocks, headers and receipts below it are not held."""
        self._require_initialised()
        height = self._meta(_BASE_HEIGHT, int)
        return 0 if height is None else height

    def latest_hash(self) -> bytes:
        """Hash of the tip's header: the `prev_hash` of the next block."""
        self._require_initialised()
        row = (
            self._conn()
            .execute("SELECT hash FROM blocks WHERE height = (SELECT MAX(height) FROM blocks)")
            .fetchone()
        )
        return bytes(row[0])

    def latest_block(self) -> Block:
        self._require_initialised()
        block = self.block_at(self.latest_height())
        assert block is not None
        return block

    def block_at(self, height: int) -> Block | None:
        if not 0 <= height <= MAX_HEIGHT:
            return None
        row = self._conn().execute("SELECT data FROM blocks WHERE height = ?", (height,))
        return self._decode_row(Block, row.fetchone(), f"block {height}")

    def block_by_hash(self, hash_: bytes) -> Block | None:
        row = self._conn().execute("SELECT data FROM blocks WHERE hash = ?", (hash_,))
        return self._decode_row(Block, row.fetchone(), f"block {hash_.hex()}")

    def blocks(self, from_height: int = 0, to_height: int | None = None) -> Iterator[Block]:
        """Blocks from `from_height` to `to_height` INCLUSIVE (default: the tip), in order.
        Reads in batches, so commits between two `next()` calls are safe."""
        for height, data in self._block_rows(from_height, to_height):
            yield self._decode(Block, data, f"block {height}")

    def block_summaries(
        self, from_height: int = 0, to_height: int | None = None
    ) -> Iterator[tuple[Header, tuple[bytes, ...]]]:
        """Each block's header and transaction ids, as `blocks` reads them, without
        decoding a transaction: a client following the chain polls these, and decoding
        every body of a busy chain for it took a few percent of its node's CPU."""
        for height, data in self._block_rows(from_height, to_height):
            header = self._stored_header(height, data)
            try:
                _, _, txs_length, position = rlp.codec.consume_length_prefix(
                    data, _header_span(data)[1]
                )
                txs_end = position + txs_length
                ids = []
                while position < txs_end:
                    _, _, length, body = rlp.codec.consume_length_prefix(data, position)
                    ids.append(tx_id_of_encoding(data[position : body + length]))
                    position = body + length
            except (rlp.exceptions.DecodingError, IndexError) as exc:
                raise StoreError(f"block {height} in {self._path} is damaged ({exc})") from exc
            if position != txs_end:
                raise StoreError(f"block {height} in {self._path} is damaged (its transactions)")
            yield header, tuple(ids)

    def _block_rows(self, from_height: int, to_height: int | None) -> Iterator[tuple[int, bytes]]:
        last = self.latest_height() if to_height is None else min(to_height, MAX_HEIGHT)
        start = max(from_height, 0)
        while start <= last:
            rows = (
                self._conn()
                .execute(
                    "SELECT height, data FROM blocks WHERE height BETWEEN ? AND ? "
                    "ORDER BY height LIMIT ?",
                    (start, last, _BATCH),
                )
                .fetchall()
            )
            if not rows:
                return
            for height, data in rows:
                yield int(height), bytes(data)
            start = int(rows[-1][0]) + 1

    def block_ids(self, heights: Sequence[int]) -> dict[int, tuple[bytes, bytes]]:
        """(block id, state root) at `heights` (those this store has), both read from
        the stored header (only the header is decoded), in one query per 500 heights:
        what an auditor compares with the anchors on the verification chain."""
        found: dict[int, tuple[bytes, bytes]] = {}
        wanted = sorted({h for h in heights if 0 <= h <= MAX_HEIGHT})
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            rows = self._conn().execute(
                f"SELECT height, data FROM blocks WHERE height IN ({marks})", chunk
            )
            for height, data in rows:
                header = self._stored_header(int(height), bytes(data))
                found[int(height)] = (block_hash(header), header.state_root)
        return found

    def _stored_header(self, height: int, data: bytes) -> Header:
        try:
            start, end = _header_span(data)
        except rlp.exceptions.DecodingError as exc:
            raise StoreError(f"block {height} in {self._path} is damaged ({exc})") from exc
        return self._decode(Header, data[start:end], f"header {height}")

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """(block height, index in the block) of a stored transaction."""
        row = self._conn().execute("SELECT height, idx FROM txs WHERE id = ?", (tx_id,)).fetchone()
        return None if row is None else (int(row[0]), int(row[1]))

    def receipt(self, tx_id: bytes) -> Receipt | None:
        row = self._conn().execute("SELECT receipt FROM txs WHERE id = ?", (tx_id,))
        return self._decode_row(Receipt, row.fetchone(), f"receipt of {tx_id.hex()}")

    @property
    def state(self) -> StoredState:
        """The committed state as a `medchain.app.StateBackend`, read through the cache:
        what a node's ledger runs on."""
        return self._state

    def get_state(self, key: bytes) -> bytes | None:
        return self._state.get(key)

    def load_state(self) -> dict[bytes, bytes]:
        """The whole state in memory, in ascending key order (SQLite orders BLOBs as
        Python orders bytes): for an export or a test, not for running a node."""
        return dict(self._state.entries())

    def state_root(self) -> bytes:
        """State root recorded in the tip's header."""
        self._require_initialised()
        return self._require_meta(_STATE_ROOT, bytes)

    # -- a fixed view for snapshots --------------------------------------------------

    def state_view(self) -> StateView:
        """A read transaction on a second connection, fixed at the tip as it is now:
        the state at exactly this height, read while blocks keep committing. Close it
        (or use it as a context manager) when done."""
        self._require_initialised()
        if self.in_memory:
            raise StoreError(
                "an in-memory store has no second connection to read a view from; "
                "use a store on disk"
            )
        return StateView(self._path)

    # -- helpers -----------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"the chain store {self._path} is closed; open a new ChainStore")
        return self._db

    def _require_initialised(self) -> None:
        if not self.is_initialised:
            raise NotFound(
                f"the chain store {self._path} holds no chain yet; "
                "initialise it from the genesis block first"
            )

    def _meta(self, key: str, kind: type[T]) -> T | None:
        row = self._conn().execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value = row[0]
        if not isinstance(value, kind):
            raise StoreError(
                f"{self._path} is corrupt: meta {key!r} is {type(value).__name__}, expected "
                f"{kind.__name__}; restore it from a backup or sync the node again"
            )
        return value

    def _require_meta(self, key: str, kind: type[T]) -> T:
        value = self._meta(key, kind)
        if value is None:
            raise StoreError(
                f"{self._path} is corrupt: meta {key!r} is missing; "
                "restore it from a backup or sync the node again"
            )
        return value

    def _decode_row(self, cls: type[T], row: tuple[bytes] | None, what: str) -> T | None:
        return None if row is None else self._decode(cls, row[0], what)

    def _decode(self, cls: type[T], data: bytes, what: str) -> T:
        try:
            return decode(cls, data)
        except DecodeError as exc:
            raise StoreError(
                f"{self._path} is corrupt: {what} does not decode ({exc.message}); "
                "restore it from a backup or sync the node again"
            ) from exc


def _header_span(block: bytes) -> tuple[int, int]:
    """Where an encoded block's header starts and ends (it is the block's first item)."""
    _, _, _, payload = rlp.codec.consume_length_prefix(block, 0)
    _, _, length, body = rlp.codec.consume_length_prefix(block, payload)
    return payload, body + length


def _check_receipts(height: int, ids: Sequence[bytes], receipts: Sequence[Receipt]) -> None:
    """One receipt per transaction, in block order: the index is keyed by these ids."""
    if len(receipts) != len(ids):
        raise StoreError(
            f"block {height} has {len(ids)} transactions but {len(receipts)} receipts; "
            "pass exactly one receipt per transaction, in block order"
        )
    for index, (id_, receipt) in enumerate(zip(ids, receipts, strict=True)):
        if receipt.tx_id != id_:
            raise StoreError(
                f"receipt {index} of block {height} is for transaction "
                f"{receipt.tx_id.hex()}, but transaction {index} is {id_.hex()}; "
                "pass the receipts in block order"
            )
    if len(set(ids)) != len(ids):
        raise StoreError(
            f"block {height} includes the same transaction twice; "
            "a transaction can be included only once"
        )
