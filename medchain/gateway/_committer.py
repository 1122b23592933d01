"""Committing a batch of accepted readings: the Merkle batch built, each patient's bundle
sealed for its readers and stored off-chain (one request), the `devices.commit_batch`
transaction signed and submitted (a resend after a lost answer is recognised, not
committed twice), and the batch recorded in the reading index for proofs.

Who reads a batch: each bundle (one patient's readings of one UTC day) is sealed for the
patient, the patient's guardians (`devices` proxies), the people the patient put in
charge of their devices, and the readers the patient shares their vitals with
(`devices.share_vitals`), as the chain lists them when the batch is committed: a reader
added later reads the batches committed from then on. The lists are cached for
`readers_cache_ms`; `refresh_readers` re-reads those about to expire, off the batch's path.

`prepare` and `commit` touch separate state (the readers' lists; the batch in flight), so
the next batch can be prepared while the previous one commits.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medchain.app import Bundle, new_batch_id
from medchain.client import ChainBackend, MedchainClient, UnknownParty
from medchain.crypto import address_from_public_key, format_address, sha256
from medchain.gateway._admission import Strike
from medchain.gateway._batch import Batch, BatchEntry, reading_day
from medchain.gateway._bundles import address_bytes, address_text, seal_bundle
from medchain.gateway._index import CommittedRow, ReadingIndex
from medchain.offchain import BlobStore
from medchain.types import MedchainError

log = logging.getLogger("medchain.gateway")


@dataclass(frozen=True)
class Prepared:
    """A batch sealed and stored off-chain, waiting for its commit_batch transaction."""

    batch: Batch
    bundles: list[Bundle]
    sealing_s: float
    storing_s: float


class Committer:
    """One gateway account's batches on one chain."""

    def __init__(
        self,
        client: MedchainClient,
        blobs: BlobStore,
        index: ReadingIndex,
        readers_cache_ms: int,
        clock: Callable[[], float],
    ) -> None:
        self.client = client
        self.chain: ChainBackend = client.chain
        self.blobs = blobs
        self.index = index
        self._readers_period_s = readers_cache_ms / 1000
        self._clock = clock
        self._reader_cache: dict[bytes, tuple[float, dict[bytes, bytes]]] = {}
        """Patient -> (expiry, reader -> encryption key); entries replaced whole."""
        self._inflight: tuple[bytes, bytes] | None = None
        """(root, batch id) of a batch whose commit did not answer: checked on retry."""
        self._refreshing = False
        """`refresh_readers` is under way: a list less than a period late serves."""
        self._on_chain_s = 0.0
        """How long the last batch took to commit on chain (for the log)."""

    def prepare(self, entries: Sequence[BatchEntry]) -> Prepared:
        """The batch of `entries`, its bundles sealed and stored off-chain."""
        started = time.perf_counter()
        batch = Batch(entries)
        patients = [address_bytes(bundle.patient) for bundle in batch.bundles]
        readers = self.readers(patients)
        blobs = [
            seal_bundle(bundle, batch.root, readers[patient])
            for bundle, patient in zip(batch.bundles, patients, strict=True)
        ]
        sealed_at = time.perf_counter()
        cids = self.blobs.put_many(blobs)  # one request for the whole batch
        bundles = [
            Bundle(
                address_bytes(bundle.patient),
                cid,
                sha256(blob),
                len(bundle.readings),
                bundle.time_from_ms,
                bundle.time_to_ms,
                bundle.devices,
            )
            for bundle, blob, cid in zip(batch.bundles, blobs, cids, strict=True)
        ]
        return Prepared(batch, bundles, sealed_at - started, time.perf_counter() - sealed_at)

    def submit(self, prepared: Prepared) -> bytes:
        """Commit a prepared batch on chain; its id. Sent again after a failure (an
        answer lost), a batch the chain did commit is recognised, not committed twice."""
        started = time.perf_counter()
        batch_id = self._submit_batch(prepared.batch, prepared.bundles)
        self._on_chain_s = time.perf_counter() - started
        return batch_id

    def record(self, prepared: Prepared, batch_id: bytes) -> None:
        """Index a committed batch and its readings (for their proofs)."""
        batch, bundles = prepared.batch, prepared.bundles
        started = time.perf_counter()
        # the index keeps the batch's leaves once and computes a proof when asked
        cid = {(p.patient, p.day): b.cid for p, b in zip(batch.bundles, bundles, strict=True)}
        rows: list[CommittedRow] = [
            (
                s.reading_id,
                batch_id,
                leaf,
                address_from_public_key(s.reading.device),
                address_bytes(e.patient),
                s.reading.timestamp_ms,
                cid[e.patient, reading_day(s)],
            )
            for leaf, e in enumerate(batch.entries)  # leaf order: batch.reading_ids
            for s in (e.reading,)
        ]
        self.index.commit_batch(batch_id, batch.root, batch.reading_ids, rows)
        log.info(
            "committed batch %s: %d readings, %d bundles (sealing %.2f s, storing %.2f s, "
            "on chain %.2f s, indexing %.2f s)",
            batch_id.hex(),
            len(batch),
            len(bundles),
            prepared.sealing_s,
            prepared.storing_s,
            self._on_chain_s,
            time.perf_counter() - started,
        )

    def _submit_batch(self, batch: Batch, bundles: list[Bundle]) -> bytes:
        if self._inflight is not None and self._inflight[0] == batch.root:
            on_chain = self.chain.batch(self._inflight[1])
            if on_chain is not None and on_chain.root == batch.root:
                return self._inflight[1]  # the earlier attempt did commit
        address = self.client.address
        nonce = self.chain.account(address).nonce
        self._inflight = (batch.root, new_batch_id(address, nonce))
        batch_id = self.client.commit_batch(batch.root, len(batch), bundles)
        self._inflight = None
        return batch_id

    def report(self, strikes: Sequence[Strike]) -> list[bytes]:
        """Report strikes on chain in one call; the devices reported (their state may
        have changed). A node that cannot be reached loses them, logged."""
        try:
            results = self.client.report_devices(list(strikes))
        except MedchainError as exc:
            log.warning("%d strikes not recorded: %s", len(strikes), exc.message)
            return []
        for (device, offence, _), result in zip(strikes, results, strict=True):
            if isinstance(result, MedchainError):
                log.warning(
                    "strike %s against %s not recorded: %s",
                    offence.value,
                    address_text(device),
                    result.message,
                )
        return [device for device, _, _ in strikes]

    # -- readers ------------------------------------------------------------------------

    def readers(self, patients: Sequence[bytes]) -> dict[bytes, dict[bytes, bytes]]:
        """Each patient's readers (the patient, guardians, vitals readers) and their
        encryption keys, as the chain lists them: from the cache while it holds, else
        read, in one lookup for all that must be. While `refresh_readers` runs, a list
        less than a period late still seals this batch; a patient never seen, or a list
        later than that, is waited for."""
        now = self._clock()
        grace = self._readers_period_s if self._refreshing else 0.0
        found: dict[bytes, dict[bytes, bytes]] = {}
        to_read: list[bytes] = []
        for patient in dict.fromkeys(patients):
            cached = self._reader_cache.get(patient)
            if cached is not None and cached[0] + grace > now:
                found[patient] = cached[1]
            else:
                to_read.append(patient)
        if to_read:
            found.update(self._read_readers(to_read, now))
        return found

    def refresh_readers(self) -> None:
        """Re-read, in one lookup, the lists that expire within half a cache period,
        so a batch seldom waits for them (re-reading a few hundred patients' lists held
        a batch up by more than a second every period)."""
        if not self._readers_period_s:
            return
        now = self._clock()
        soon = now + self._readers_period_s / 2
        expiring = [p for p, (expires, _) in list(self._reader_cache.items()) if expires <= soon]
        if not expiring:
            return
        self._refreshing = True
        try:
            self._read_readers(expiring, now)
        finally:
            self._refreshing = False

    def _read_readers(
        self, patients: Sequence[bytes], now: float
    ) -> dict[bytes, dict[bytes, bytes]]:
        """Patients' readers and keys in one lookup (`vitals_recipients`), cached."""
        expires = now + self._readers_period_s
        found = {}
        for patient, readers in zip(patients, self.chain.vitals_recipients(patients), strict=True):
            if readers is None:
                raise UnknownParty(
                    f"{format_address(patient)} is not a patient on chain {self.chain.chain_id}"
                )
            for address, key in readers.items():
                if not key:
                    raise UnknownParty(
                        f"{format_address(address)}, a reader of {format_address(patient)}'s "
                        "vitals, has no encryption key and cannot be given access to them"
                    )
            self._reader_cache[patient] = (expires, readers)
            found[patient] = readers
        return found


__all__ = ["Committer", "Prepared"]
