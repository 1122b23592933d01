"""Each node's index of the edge gateways' bundles, built from its blocks beside the
state.

A batch's bundles (one per patient and UTC day) only ever accumulate, and only queries
read them: a patient's readings over a time range, a batch's bundles. So the committed
state keeps only a batch's fixed-size header (`medchain.app.BatchHeader`), and each
node lists the bundles here from the successful `devices.commit_batch` transactions of
the blocks it stores. Every node derives the same index from the same blocks, so it
answers exactly as the state did, without the state root committing to it, the
state's tree rehashing it, or a snapshot carrying it to a joining node.

The file sits beside the chain store (`chain.sqlite` -> `chain-vitals.sqlite`; in
memory for a store in memory) and is never the only copy of anything: it records the
heights it covers, [low, high], and the hash of block `high`, and `catch_up` indexes
whatever the store holds beyond them. Delete it and it is rebuilt from the blocks; if
the store no longer holds block `high` with that hash (another chain, a store restored
from a backup) it is rebuilt too. A node that joined from a snapshot holds no blocks
below the snapshot's height until it has fetched them: the index starts at its first
block (`complete_from`) and reaches down as older blocks arrive, a few hundred a call.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from medchain.app import (
    MAX_VITALS_QUERY_ENTRIES,
    MAX_VITALS_QUERY_SCAN,
    MS_PER_DAY,
    Batch,
    Bundle,
    InvalidArgument,
    VitalsEntry,
    check_vitals_range,
    committed_batch,
)
from medchain.crypto import ADDRESS_SIZE, format_address
from medchain.node._sqlite_writes import full_disk_raised, write_transaction
from medchain.store import ChainStore
from medchain.types import Block, DecodeError, Receipt, Tx, block_hash, cid_from_digest, tx_id

log = logging.getLogger("medchain.node.vitals")

INDEX_SUFFIX = "-vitals.sqlite"
"""The index of `DIR/chain.sqlite` is `DIR/chain-vitals.sqlite`."""
BATCH_METHOD = "devices.commit_batch"
PAST_BLOCKS_PER_CALL = 256
"""Most blocks below the index's low end (fetched by a backfill) one `catch_up` indexes,
so a long backfill is indexed a little at a time, never in one long stall."""
_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY, batch_id BLOB NOT NULL UNIQUE, height INTEGER NOT NULL,
    root BLOB NOT NULL, first_bundle INTEGER NOT NULL, bundles INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (
    id INTEGER PRIMARY KEY, batch INTEGER NOT NULL, patient BLOB NOT NULL,
    day INTEGER NOT NULL, cid TEXT, ciphertext_hash BLOB NOT NULL, count INTEGER NOT NULL,
    time_from_ms INTEGER NOT NULL, time_to_ms INTEGER NOT NULL, devices BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS bundles_by_day ON bundles (patient, day);
"""
"""A batch's bundles are appended together, so they are a range of ids (rows packed in
pages as written, no index by batch); the patient/day index holds only the key. A CID
is kept only when it is not the canonical one of its hash (a gateway's never is)."""
_TABLES = ("meta", "batches", "bundles")
_BUNDLE_COLUMNS = "patient, cid, ciphertext_hash, count, time_from_ms, time_to_ms, devices"


def index_path(store_path: Path) -> Path:
    return store_path.with_name(store_path.stem + INDEX_SUFFIX)


class VitalsIndex:
    """The bundles of the batches in blocks [low, high] of one chain store. Belongs to
    the thread that opened it (the node's loop), as the store does."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        with full_disk_raised(self.path, "the new vitals index"):
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # a lost tail is indexed again
            if self._meta_or_none("version") not in (None, _VERSION):
                self._db.executescript("".join(f"DROP TABLE {t};" for t in _TABLES))
            self._db.executescript(_SCHEMA)
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('version', ?)", (_VERSION,))
        self._checked = False
        """Whether block `high` was found in the store with its hash since opening."""

    @classmethod
    def beside(cls, store: ChainStore) -> VitalsIndex:
        return cls(":memory:" if store.in_memory else index_path(store.path))

    def close(self) -> None:
        self._db.close()

    # -- what it covers ---------------------------------------------------------------

    @property
    def complete_from(self) -> int | None:
        """The lowest height indexed: every batch from there on is listed (0 once the
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
                done += self._index(block, _batch_oks(store, block.txs))
        low = self.complete_from
        while low is not None and low > 0 and done < PAST_BLOCKS_PER_CALL:
            past = store.block_at(low - 1)
            if past is None:
                break
            done += self._index(past, _batch_oks(store, past.txs))
            low -= 1
        return done

    def add_committed(self, block: Block, receipts: Sequence[Receipt], store: ChainStore) -> None:
        """`block` was just stored with `receipts`: index it from them, or catch up
        from the store if the index is not right below it."""
        if self._checked and self.high == block.header.height - 1:
            self._index(block, [r.ok for r in receipts])
        else:
            self.catch_up(store)

    def _check_against(self, store: ChainStore) -> None:
        """Rebuild if the store does not hold block `high` as indexed."""
        if self._checked:
            return
        high = self.high
        if high is not None:
            found = store.block_ids([high]).get(high)
            if found is None or found[0] != self._meta("high_hash"):
                log.warning("the vitals index is not of this chain store's blocks: rebuilding it")
                self._reset()
        self._checked = True

    def _reset(self) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM bundles")
            db.execute("DELETE FROM batches")
            db.execute("DELETE FROM meta")
            _set_meta(db, {"version": _VERSION})

    # -- writing ----------------------------------------------------------------------

    def _index(self, block: Block, oks: Sequence[bool]) -> int:
        """List the batches of `block` (the next above high, the next below low, or the
        first); 0 if another process indexed it meanwhile, else 1."""
        height = block.header.height
        batches = list(_batches_in(block, oks))
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
            for batch in batches:
                _insert(db, batch)
        return 1

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with write_transaction(self._db, self.path, "the vitals index's update"):
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

    # -- queries ----------------------------------------------------------------------

    def bundles_of(self, batch_id: bytes) -> tuple[Bundle, ...]:
        """The batch's bundles in the order it committed them; () if not indexed."""
        rows = self._db.execute(
            f"SELECT {_BUNDLE_COLUMNS} FROM batches t JOIN bundles b "
            "ON b.id BETWEEN t.first_bundle AND t.first_bundle + t.bundles - 1 "
            "WHERE t.batch_id = ? ORDER BY b.id",
            (batch_id,),
        )
        return tuple(_bundle(row) for row in rows)

    def vitals(
        self, patient: bytes, from_ms: int, to_ms: int, device: bytes | None = None
    ) -> list[VitalsEntry]:
        """The patient's bundles whose readings overlap [from_ms, to_ms] (both included),
        only those holding `device`'s readings when one is given, in (time_from_ms,
        height, batch id) order. At most MAX_VITALS_QUERY_DAYS UTC days, with at most
        MAX_VITALS_QUERY_SCAN entries in them, and MAX_VITALS_QUERY_ENTRIES found; a
        wider range is refused with InvalidArgument."""
        check_vitals_range(from_ms, to_ms)
        days = (patient, from_ms // MS_PER_DAY, to_ms // MS_PER_DAY)
        where = "WHERE b.patient = ? AND b.day BETWEEN ? AND ?"
        (listed,) = self._db.execute(f"SELECT COUNT(*) FROM bundles b {where}", days).fetchone()
        if listed > MAX_VITALS_QUERY_SCAN:
            raise InvalidArgument(
                f"{format_address(patient)} has {listed} vitals bundles in the days of this "
                f"range; one query reads at most {MAX_VITALS_QUERY_SCAN}: ask for fewer days"
            )
        rows = self._db.execute(
            f"SELECT t.batch_id, t.height, t.root, {_BUNDLE_COLUMNS} FROM bundles b "
            f"JOIN batches t ON t.id = b.batch {where} "
            "AND b.time_from_ms <= ? AND b.time_to_ms >= ?",
            (*days, to_ms, from_ms),
        )
        found = []
        for batch_id, height, root, *columns in rows:
            bundle = _bundle(columns)
            if device is not None and device not in bundle.devices:
                continue
            found.append(_entry(batch_id, height, root, bundle))
            if len(found) > MAX_VITALS_QUERY_ENTRIES:
                raise InvalidArgument(
                    f"more than {MAX_VITALS_QUERY_ENTRIES} vitals bundles of "
                    f"{format_address(patient)} overlap this range; ask for a shorter one"
                )
        found.sort(key=lambda e: (e.time_from_ms, e.height, e.batch_id))
        return found


def _batch_oks(store: ChainStore, txs: Sequence[Tx]) -> list[bool]:
    """Per transaction: whether it is a batch that committed (its stored receipt)."""
    oks = []
    for tx in txs:
        receipt = store.receipt(tx_id(tx)) if tx.method == BATCH_METHOD else None
        oks.append(receipt is not None and receipt.ok)
    return oks


def _batches_in(block: Block, oks: Sequence[bool]) -> Iterator[Batch]:
    for tx, ok in zip(block.txs, oks, strict=True):
        if ok and tx.method == BATCH_METHOD:
            try:
                yield committed_batch(tx, block.header.height)
            except DecodeError:  # a successful call decoded its arguments: cannot happen
                log.error("committed batch %s does not decode; not indexed", tx_id(tx).hex())


def _insert(db: sqlite3.Connection, batch: Batch) -> None:
    (first,) = db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM bundles").fetchone()
    added = db.execute(
        "INSERT OR IGNORE INTO batches (batch_id, height, root, first_bundle, bundles) "
        "VALUES (?, ?, ?, ?, ?)",
        (batch.batch_id, batch.height, batch.root, first, len(batch.bundles)),
    )
    if not added.rowcount:
        return  # a batch id is committed once: cannot happen
    db.executemany(
        "INSERT INTO bundles (id, batch, patient, day, cid, ciphertext_hash, count, "
        "time_from_ms, time_to_ms, devices) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                first + seq,
                added.lastrowid,
                b.patient,
                b.day,
                None if b.cid == cid_from_digest(b.ciphertext_hash) else b.cid,
                b.ciphertext_hash,
                b.count,
                b.time_from_ms,
                b.time_to_ms,
                b"".join(b.devices),
            )
            for seq, b in enumerate(batch.bundles)
        ],
    )


def _bundle(row: Sequence[Any]) -> Bundle:
    """A bundle from its columns (`_BUNDLE_COLUMNS`; SQLite gives back bytes, str, int)."""
    patient, cid, digest, count, time_from, time_to, packed = row
    devices = tuple(packed[i : i + ADDRESS_SIZE] for i in range(0, len(packed), ADDRESS_SIZE))
    cid = cid_from_digest(digest) if cid is None else cid
    return Bundle(patient, cid, digest, count, time_from, time_to, devices)


def _entry(batch_id: bytes, height: int, root: bytes, b: Bundle) -> VitalsEntry:
    fields = (b.cid, b.ciphertext_hash, b.count, b.time_from_ms, b.time_to_ms, b.devices)
    return VitalsEntry(batch_id, height, root, *fields)


def _set_meta(db: sqlite3.Connection, values: dict[str, object]) -> None:
    db.executemany(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        sorted(values.items()),
    )
