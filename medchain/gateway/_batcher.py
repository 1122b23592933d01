"""Which accepted readings wait for a batch, and when a batch is due: by size, or by the
age of the oldest reading waiting, against the clock it is given. Pure bookkeeping, no
threads and no I/O: the gateway service calls it under its lock, and its tests drive it
with a fake clock.

A batch is taken out (`take`) while it is sealed and committed, so the next one can be
made from what is left; it is then either `done` (committed: forgotten here) or
`released` (failed: its readings wait again, none lost).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, KeysView, Mapping

from medchain.app import MAX_BATCH_BUNDLES
from medchain.gateway._batch import BatchEntry, reading_day

# Upper bounds of a commit_batch transaction's size, to keep a batch under the chain's
# max_tx_bytes: an encoded Bundle is 156 bytes with one device (a 59-character CID, the
# largest counts and times), each further device 21; the signed envelope and the
# arguments around the bundles stay well under a kilobyte.
BUNDLE_BYTES = 160
DEVICE_BYTES = 21
TX_OVERHEAD_BYTES = 1_024


def select_batch(
    candidates: Iterable[BatchEntry], max_readings: int, max_tx_bytes: int
) -> list[BatchEntry]:
    """The first of `candidates` (in acceptance order) that fit one batch: at most
    `max_readings`, in at most the chain's MAX_BATCH_BUNDLES bundles (one per patient and
    UTC day), and few enough bundles that the transaction stays under `max_tx_bytes`.
    A reading that would open a bundle too many waits for a later batch."""
    entries: list[BatchEntry] = []
    bundles: dict[tuple[str, int], set[bytes]] = {}
    budget = max_tx_bytes - TX_OVERHEAD_BYTES
    size = 0
    for entry in candidates:
        if len(entries) >= max_readings:
            break
        key = (entry.patient, reading_day(entry.reading))
        devices = bundles.get(key)
        device = entry.reading.reading.device
        if devices is None:
            if len(bundles) >= MAX_BATCH_BUNDLES or size + BUNDLE_BYTES > budget:
                continue
            devices = bundles[key] = set()
            size += BUNDLE_BYTES
        if device not in devices:
            if size + DEVICE_BYTES > budget:
                continue
            devices.add(device)
            size += DEVICE_BYTES
        entries.append(entry)
    return entries


class Batcher:
    """Pending readings (accepted, not yet committed) in acceptance order."""

    def __init__(
        self,
        clock: Callable[[], float],
        max_readings: int,
        max_delay_ms: int,
        pending: Iterable[BatchEntry] = (),
    ) -> None:
        """`clock` (seconds) times the readings' wait; `pending`: readings accepted
        before a restart, waiting from now."""
        self._clock = clock
        self._max_readings = max_readings
        self._max_delay_ms = max_delay_ms
        self._pending: dict[bytes, BatchEntry] = {e.reading.reading_id: e for e in pending}
        started = clock()
        self._accepted_at: dict[bytes, float] = dict.fromkeys(self._pending, started)
        """When each pending reading was accepted, in acceptance order."""
        self._taken: set[bytes] = set()
        """Ids of the readings in a batch being prepared or committed."""
        self._oldest: float | None = started if self._pending else None
        """When the oldest pending reading outside a batch in progress was accepted."""

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, reading_id: object) -> bool:
        return reading_id in self._pending

    def entry(self, reading_id: bytes) -> BatchEntry | None:
        """The pending reading with this id, if any."""
        return self._pending.get(reading_id)

    @property
    def ids(self) -> KeysView[bytes]:
        """The pending readings' ids, a live view (a membership test per reading costs
        a dict lookup, no call)."""
        return self._pending.keys()

    def add(self, entries: Mapping[bytes, BatchEntry]) -> None:
        """Readings just accepted (by reading id), waiting from now."""
        now = self._clock()
        for rid, entry in entries.items():
            self._pending[rid] = entry
            self._accepted_at[rid] = now
        if entries and self._oldest is None:
            self._oldest = now

    def due(self) -> bool:
        """A batch is full, or the oldest reading waiting has waited the delay."""
        if len(self._pending) >= self._max_readings:
            return True
        oldest = self._oldest
        return oldest is not None and (self._clock() - oldest) * 1000 >= self._max_delay_ms

    def take(self, max_tx_bytes: int) -> list[BatchEntry]:
        """The next batch (see `select_batch`), from the readings not in a batch in
        progress; empty when none wait. Its readings stay pending until `done`."""
        waiting = (e for rid, e in self._pending.items() if rid not in self._taken)
        entries = select_batch(waiting, self._max_readings, max_tx_bytes)
        self._taken.update(e.reading.reading_id for e in entries)
        return entries

    def release(self, entries: Iterable[BatchEntry]) -> None:
        """A batch that failed: its readings wait for the next one."""
        for entry in entries:
            self._taken.discard(entry.reading.reading_id)
        self._oldest = self._oldest_waiting()

    def done(self, entries: Iterable[BatchEntry]) -> None:
        """A batch committed: its readings are no longer pending."""
        for entry in entries:
            rid = entry.reading.reading_id
            self._pending.pop(rid, None)
            self._accepted_at.pop(rid, None)
            self._taken.discard(rid)
        # what waited while this batch was made is due by its own age, not anew
        self._oldest = self._oldest_waiting()

    def _oldest_waiting(self) -> float | None:
        return next((at for rid, at in self._accepted_at.items() if rid not in self._taken), None)


__all__ = [
    "BUNDLE_BYTES",
    "DEVICE_BYTES",
    "TX_OVERHEAD_BYTES",
    "Batcher",
    "select_batch",
]
