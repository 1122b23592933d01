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
memory for a store in memory) and is rebuilt from the blocks whenever it does not match
them, as every `BlockIndex` is: a node that joined from a snapshot lists batches from
its first block (`complete_from`) and older ones as it fetches their blocks.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator, Sequence
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
from medchain.node._block_index import BlockIndex, path_beside
from medchain.store import ChainStore
from medchain.types import Block, DecodeError, cid_from_digest, tx_id

log = logging.getLogger("medchain.node.vitals")

INDEX_SUFFIX = "-vitals.sqlite"
"""The index of `DIR/chain.sqlite` is `DIR/chain-vitals.sqlite`."""
BATCH_METHOD = "devices.commit_batch"
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
_BUNDLE_COLUMNS = "patient, cid, ciphertext_hash, count, time_from_ms, time_to_ms, devices"


class VitalsIndex(BlockIndex):
    """The bundles of the batches in blocks [low, high] of one chain store."""

    NAME = "vitals index"
    SCHEMA = _SCHEMA
    TABLES = ("batches", "bundles")
    VERSION = _VERSION
    METHODS = frozenset({BATCH_METHOD})

    @classmethod
    def beside(cls, store: ChainStore) -> VitalsIndex:
        return cls(path_beside(store, INDEX_SUFFIX))

    def _add(self, db: sqlite3.Connection, block: Block, oks: Sequence[bool]) -> None:
        for batch in _batches_in(block, oks):
            _insert(db, batch)

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
