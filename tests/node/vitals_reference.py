"""The vitals index as the devices contract kept it in the state before it moved to
each node's own index (medchain/app/_devices.py, `_index_vitals` and `vitals_of`, over
a dict instead of state keys): the reference the node's index must answer exactly as.
Its bounds on a query's work are left out: tests/node/test_vitals_index.py checks the
index's own, message by message."""

from __future__ import annotations

from collections import defaultdict

from medchain.app import MS_PER_DAY, Batch, VitalsEntry, check_vitals_range


class ReferenceVitals:
    def __init__(self) -> None:
        self.days: dict[tuple[bytes, int], list[VitalsEntry]] = defaultdict(list)
        """(patient, day) -> its entries in commit order, as the state listed them."""

    def add(self, batch: Batch) -> None:
        """Each bundle under its patient and day (append-only)."""
        for b in batch.bundles:
            bundle = (b.cid, b.ciphertext_hash, b.count, b.time_from_ms, b.time_to_ms, b.devices)
            entry = VitalsEntry(batch.batch_id, batch.height, batch.root, *bundle)
            self.days[(b.patient, b.day)].append(entry)

    def vitals_of(
        self, patient: bytes, from_ms: int, to_ms: int, device: bytes | None = None
    ) -> list[VitalsEntry]:
        check_vitals_range(from_ms, to_ms)
        found = [
            entry
            for day in range(from_ms // MS_PER_DAY, to_ms // MS_PER_DAY + 1)
            for entry in self.days.get((patient, day), [])
            if not (entry.time_from_ms > to_ms or entry.time_to_ms < from_ms)
            and (device is None or device in entry.devices)
        ]
        found.sort(key=lambda e: (e.time_from_ms, e.height, e.batch_id))
        return found
