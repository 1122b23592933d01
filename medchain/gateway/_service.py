"""The gateway pipeline: every reading a device sends goes through `GatewayService.submit`
(or `submit_checked`, its stateless checks made by the intake workers), every batch to
the chain through `flush` (or, pipelined, `prepare` and `commit`). Transport-free, so the
HTTP server and MQTT intake are thin shells and the whole pipeline is tested in process
on a LocalChain.

Three parts, composed here: `Admission` decides on readings (medchain.gateway._admission),
the `Batcher` keeps the accepted ones until a batch is due (._batcher), the `Committer`
seals, stores, commits and indexes a batch (._committer).

Concurrency: the service starts no threads and owns no executor. Whoever drives it (the
gateway's asyncio loop: medchain.gateway._server) decides where its blocking steps run.
Its in-memory state (admission's and the batcher's) changes only under its one lock,
taken once per group of readings and once per batch step; chain and disk I/O run
outside it, except storing a group of accepted readings, which must happen before they
are acknowledged and in order. `prepare` and `commit` may overlap (the next batch is
made while the previous one commits); one flush at a time (`flush`, or the driver's
prepare/commit sequence), and one `submit_checked` at a time keeps readings in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from medchain.app import PurposeOfUse
from medchain.client import ChainBackend, MedchainClient
from medchain.crypto import AccountKeys, address_from_public_key, format_address, parse_address
from medchain.gateway._admission import (
    Accepted,
    Admission,
    Answer,
    ReadingRefused,
    device_addresses,
)
from medchain.gateway._batch import BatchEntry
from medchain.gateway._batcher import Batcher
from medchain.gateway._bundles import (
    BUNDLE_CONTEXT,
    MAX_BUNDLE_BYTES,
    SealedBundle,
    address_text,
    bundle_context,
    open_bundle,
    seal_bundle,
)
from medchain.gateway._committer import Committer, Prepared
from medchain.gateway._config import GatewayConfig
from medchain.gateway._index import CommittedReading, ReadingIndex
from medchain.gateway._intake import CheckedReading, check_reading
from medchain.gateway._reading_access import ReadingAccess, ReadingParties
from medchain.gateway._readings import BadReading, SignedReading, reading_from_json
from medchain.node import DisclosureLog, MemoryDisclosureLog
from medchain.offchain import BlobStore
from medchain.types import Disclosure, DisclosureKind, ReadBasis


@dataclass(frozen=True)
class ReadingStatus:
    reading_id: bytes
    state: str
    """"pending", "committed" or "unknown"."""
    committed: CommittedReading | None = None
    device: bytes = b""
    """The device's address (empty for an unknown reading)."""
    patient: bytes = b""

    @property
    def parties(self) -> ReadingParties:
        return ReadingParties(self.device, self.patient, self.committed is not None)


class GatewayService:
    """One gateway account, one chain."""

    def __init__(
        self,
        keys: AccountKeys,
        chain: ChainBackend,
        index: ReadingIndex,
        config: GatewayConfig | None = None,
        *,
        blobs: BlobStore | None = None,
        disclosures: DisclosureLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` times batching, rate limits and caches; `wall_clock` (seconds since
        the Unix epoch) is what readings' own times are checked against. `disclosures`
        logs every reading status served (a file in the gateway's home when it runs
        from one; in memory without)."""
        self.client = MedchainClient(keys, chain)
        self.chain = chain
        self.index = index
        self.config = config or GatewayConfig()
        self.blobs = blobs if blobs is not None else chain.bulk_blobs(keys)
        self.disclosures = disclosures if disclosures is not None else MemoryDisclosureLog()
        self.access = ReadingAccess(chain, clock)
        self._clock = clock
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._refreshing = False
        """A `refresh` is under way: records it re-reads may serve a little late."""
        self.admission = Admission(chain, index, self.config)
        self.batcher = Batcher(
            clock,
            self.config.batch_max_readings,
            self.config.batch_max_delay_ms,
            (BatchEntry(format_address(p.patient), p.reading) for p in index.pending()),
        )
        self.committer = Committer(
            self.client, self.blobs, index, self.config.readers_cache_ms, clock
        )

    @property
    def address(self) -> bytes:
        return self.client.address

    @property
    def pending_count(self) -> int:
        return len(self.batcher)

    # -- intake -------------------------------------------------------------------------

    def submit_json(self, data: bytes | str) -> Accepted:
        try:
            signed = reading_from_json(data)
        except BadReading as exc:
            raise ReadingRefused(exc.message, exc.code) from None
        return self.submit(signed)

    def submit(self, signed: SignedReading) -> Accepted:
        """Run one reading through the pipeline; ReadingRefused says why it was refused."""
        (result,) = self.submit_many([signed])
        if isinstance(result, ReadingRefused):
            raise result
        return result

    def submit_many(self, readings: Sequence[SignedReading]) -> list[Answer]:
        """Run a group of readings through the pipeline, the stateless checks included
        (in this thread: a gateway process hands those to its intake workers and calls
        `submit_checked`); see `submit_checked`."""
        return self.submit_checked([check_reading(signed) for signed in readings])

    def submit_checked(self, readings: Sequence[CheckedReading]) -> list[Answer]:
        """Decide on a group of checked readings, in order, and persist the accepted ones
        in one transaction (group commit) before answering: one answer per reading.
        A device's readings must come in sequence order within and across groups."""
        addresses = device_addresses(readings)
        now = self._clock()
        with self._lock:
            to_read = self.admission.to_read(set(addresses), now, self._refreshing)
        if to_read:  # a device never seen, or expired: waited for
            records = self.admission.read_devices(to_read, now)
            with self._lock:
                self.admission.remember(records)
        now_ms = int(self._wall_clock() * 1000)
        with self._lock:
            results, accepted = self.admission.admit(
                readings, addresses, self.batcher.ids, self._clock(), now_ms
            )
            if accepted:
                try:
                    self.index.accept_many([(s, d.patient) for s, d in accepted.values()])
                except Exception:
                    self.admission.undo()
                    raise
                self.batcher.add(
                    {
                        rid: BatchEntry(address_text(d.patient), s)
                        for rid, (s, d) in accepted.items()
                    }
                )
        return results

    def refresh(self) -> None:
        """Re-read the device records and patients' readers about to expire, so that
        neither a group of readings nor a batch waits for the chain to answer. The
        gateway's loop calls it every little while, apart from intake and batches;
        while it runs, what it re-reads serves a little past its expiry."""
        now = self._clock()
        with self._lock:
            expiring = self.admission.expiring(now)
            self._refreshing = True
        try:
            if expiring:
                records = self.admission.read_devices(expiring, now)
                with self._lock:
                    self.admission.remember(records)
            self.committer.refresh_readers()
        finally:
            self._refreshing = False

    # -- status -------------------------------------------------------------------------

    def status(self, reading_id: bytes) -> ReadingStatus:
        committed = self.index.committed(reading_id)
        if committed is not None:
            c = committed
            return ReadingStatus(reading_id, "committed", c, c.device, c.patient)
        with self._lock:
            entry = self.batcher.entry(reading_id)
        if entry is not None:
            device = address_from_public_key(entry.reading.reading.device)
            return ReadingStatus(
                reading_id, "pending", device=device, patient=parse_address(entry.patient)
            )
        return ReadingStatus(reading_id, "unknown")

    def read_status(
        self, reading_id: bytes, signer_key: bytes, purpose: PurposeOfUse, now_ms: int
    ) -> ReadingStatus:
        """The reading's status for the verified signer of a read request, logged as a
        disclosure before it is answered; ReadNotAllowed naming what the signer lacks,
        DisclosureLogFailed if the log cannot take it (then it is not served). An
        unknown reading discloses nothing and is not logged."""
        status = self.status(reading_id)
        if status.state == "unknown":
            return status
        reader, access = self.access.check(signer_key, status.parties, now_ms)
        self.disclosures.append(
            Disclosure(
                now_ms,
                reader,
                status.patient,
                DisclosureKind.VITALS,
                purpose.value,
                ReadBasis(access.basis),
                on_behalf=access.on_behalf,
                detail=f"gateway reading {reading_id.hex()} ({status.state})",
            )
        )
        return status

    # -- batching -----------------------------------------------------------------------

    def due(self) -> bool:
        """Whether a batch should be committed now (full, or its oldest reading waited
        the configured delay), or strikes are waiting to be reported."""
        return self.batcher.due() or self.admission.has_strikes

    def flush(self) -> list[bytes]:
        """Report the window's strikes, then commit pending readings in batches; returns
        the committed batch ids. A batch that fails stays pending and is retried by the
        next flush, so no accepted reading is lost. Strikes are also reported after each
        batch: under steady load a flush goes on for as long as readings keep coming,
        and a misbehaving device must not wait for it to end. (The gateway's loop runs
        the same steps with the next batch prepared while one commits.)"""
        self.report_strikes()
        batch_ids: list[bytes] = []
        prepared = self.prepare()
        while prepared is not None:
            batch_ids.append(self.commit(prepared))
            self.report_strikes()
            prepared = self.prepare()
        return batch_ids

    def report_strikes(self) -> None:
        with self._lock:
            strikes = self.admission.take_strikes()
        if strikes:
            reported = self.committer.report(strikes)
            with self._lock:
                self.admission.forget(reported)

    def prepare(self) -> Prepared | None:
        """The next batch, sealed and its bundles stored off-chain; None if nothing is
        pending outside the batch being committed."""
        with self._lock:
            entries = self.batcher.take(self.chain.params.max_tx_bytes)
        if not entries:
            return None
        try:
            return self.committer.prepare(entries)
        except BaseException:
            self.release(entries)
            raise

    def commit(self, prepared: Prepared) -> bytes:
        """Commit a prepared batch and index it; its readings stay pending if the
        chain does not take it."""
        try:
            batch_id = self.committer.submit(prepared)
        except BaseException:
            self.release(prepared.batch.entries)
            raise
        self.committer.record(prepared, batch_id)
        with self._lock:
            self.batcher.done(prepared.batch.entries)
        return batch_id

    def release(self, entries: Sequence[BatchEntry]) -> None:
        """A batch that will not be committed now: its readings wait for the next."""
        with self._lock:
            self.batcher.release(entries)


__all__ = [
    "BUNDLE_CONTEXT",
    "MAX_BUNDLE_BYTES",
    "Accepted",
    "GatewayService",
    "Prepared",
    "ReadingRefused",
    "ReadingStatus",
    "SealedBundle",
    "bundle_context",
    "open_bundle",
    "seal_bundle",
]
