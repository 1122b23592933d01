"""What a node's indexes of its own blocks share: an SQLite file beside the chain store
that records the heights it covers, [low, high], and the hash of block `high`, and
indexes whatever the store holds beyond them.

Such an index is never the only copy of anything. Delete it and it is rebuilt from
the blocks; if the store no longer holds block `high` with that hash (another chain,
a store restored from a backup) it is rebuilt too. A node that joined from a snapshot
holds no blocks below the snapshot's height until it has fetched them: the index
starts at its first block (`complete_from`) and reaches down as older blocks arrive,
a few hundred a call. A subclass says which transactions it reads (`METHODS`) and
what it lists of them (`_add`)."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from medchain.node._sqlite_writes import full_disk_raised, write_transaction
from medchain.store import ChainStore
from medchain.types import Block, Receipt, Tx, block_hash, tx_id

log = logging.getLogger("medchain.node.index")

PAST_BLOCKS_PER_CALL = 256
"""Most blocks below the index's low end (fetched by a backfill) one `catch_up` indexes,
so a long backfill is indexed a little at a time, never in one long stall."""


def path_beside(store: ChainStore, suffix: str) -> Path:
    """`DIR/chain.sqlite` -> `DIR/chain{suffix}`; in memory for a store in memory."""
    return Path(":memory:") if store.in_memory else store.path.with_name(store.path.stem + suffix)


class BlockIndex:
    """An index of blocks [low, high] of one chain store. Belongs to the thread that
    opened it (the node's loop), as the store does."""

    NAME: ClassVar[str]
    """What it is called in messages: "the vitals index"."""
    SCHEMA: ClassVar[str]
    """Its tables (`meta` among them), each created IF NOT EXISTS."""
    TABLES: ClassVar[tuple[str, ...]]
    """Every table of SCHEMA but `meta`: emptied by a rebuild."""
    VERSION: ClassVar[int]
    """Another version found in the file drops its tables: they are built again."""
    METHODS: ClassVar[frozenset[str]]
    """The transactions `_add` reads (only theirs are looked up in the store)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        with full_disk_raised(self.path, f"the new {self.NAME}"):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a lost tail is indexed again
            if self._meta_or_none("version") not in (None, self.VERSION):
                tables = ("meta", *self.TABLES)
                self._db.executescript("".join(f"DROP TABLE IF EXISTS {t};" for t in tables))
            self._db.executescript(self.SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (self.VERSION,))
        self._checked = False
        """Whether block `high` was found in the store with its hash since opening."""

    def close(self) -> None:
        self._db.close()

    def _add(self, db: sqlite3.Connection, block: Block, oks: Sequence[bool]) -> None:
        """List what `block` holds, given whether each of its transactions succeeded;
        runs in the transaction that records the block as indexed."""
        raise NotImplementedError

    # -- what it covers ---------------------------------------------------------------

    @property
    def complete_from(self) -> int | None:
        """The lowest height indexed: everything from there on is listed (0 once the
        node holds every block); None before anything is indexed."""
        return self._height("low")

    @property
    def high(self) -> int | None:
        return self._height("high")

    def catch_up(self, store: ChainStore) -> int:
        """Index the blocks `store` holds beyond [low, high]: every one above, and up to
        PAST_BLOCKS_PER_CALL below. Returns how many it indexed."""
        self._check_against(store)
        high = self.high
        tip = store.latest_height()
        done = 0
        if high is None or high < tip:
            for block in store.blocks(0 if high is None else high + 1, tip):
                done += self._index(block, self._oks(store, block.txs))
        low = self.complete_from
        while low is not None and low > 0 and done < PAST_BLOCKS_PER_CALL:
            past = store.block_at(low - 1)
            if past is None:
                break
            done += self._index(past, self._oks(store, past.txs))
            low -= 1
        return done

    def add_committed(self, block: Block, receipts: Sequence[Receipt], store: ChainStore) -> None:
        """`block` was just stored with `receipts`: index it from them, or catch up
        from the store if the index is not right below it."""
        if self._checked and self.high == block.header.height - 1:
            self._index(block, [r.ok for r in receipts])
        else:
            self.catch_up(store)

    def _oks(self, store: ChainStore, txs: Sequence[Tx]) -> list[bool]:
        """Per transaction: whether it is one this index reads and it succeeded (its
        stored receipt)."""
        oks = []
        for tx in txs:
            receipt = store.receipt(tx_id(tx)) if tx.method in self.METHODS else None
            oks.append(receipt is not None and receipt.ok)
        return oks

    def _check_against(self, store: ChainStore) -> None:
        """Rebuild if the store does not hold block `high` as indexed."""
        if self._checked:
            return
        high = self.high
        if high is not None:
            found = store.block_ids([high]).get(high)
            if found is None or found[0] != self._meta("high_hash"):
                log.warning("the %s is not of this chain store's blocks: rebuilding it", self.NAME)
                self._reset()
        self._checked = True

    def _reset(self) -> None:
        with self._transaction() as db:
            for table in (*self.TABLES, "meta"):
                db.execute(f"DELETE FROM {table}")
            _set_meta(db, {"version": self.VERSION})

    # -- writing ----------------------------------------------------------------------

    def _index(self, block: Block, oks: Sequence[bool]) -> int:
        """Index `block` (the next above high, the next below low, or the first); 0 if
        another process indexed it meanwhile, else 1."""
        height = block.header.height
        with self._transaction() as db:
            low, high = self._height("low"), self._height("high")
            top = {"high": height, "high_hash": block_hash(block.header)}
            if high is None:
                _set_meta(db, {"low": height, **top})
            elif height == high + 1:
                _set_meta(db, top)
            elif low is not None and height == low - 1:
                _set_meta(db, {"low": height})
            else:
                return 0
            self._add(db, block, oks)
        return 1

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with write_transaction(self._db, self.path, f"the {self.NAME}'s update"):
            yield self._db

    def _meta(self, key: str) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _meta_or_none(self, key: str) -> Any:
        """`_meta`, or None in a file with no index yet."""
        try:
            return self._meta(key)
        except sqlite3.OperationalError:  # no such table
            return None

    def _height(self, key: str) -> int | None:
        value = self._meta(key)
        return None if value is None else int(value)


def _set_meta(db: sqlite3.Connection, values: dict[str, object]) -> None:
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        sorted(values.items()),
    )
