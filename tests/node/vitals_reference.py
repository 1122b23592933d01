"""The vitals index as the devices contract kept it in the state before it moved to
each node's own index (medchain/app/_devices.py, `_index_vitals` and `vitals_of`, kept
as they were but over a dict): the reference the node's index must answer exactly as."""

from __future__ import annotations

from collections import defaultdict

from medchain.app import (
    MAX_VITALS_QUERY_ENTRIES,
    MAX_VITALS_QUERY_SCAN,
    MS_PER_DAY,
    Batch,
    Bundle,
    InvalidArgument,
    VitalsEntry,
    check_vitals_range,
)
from medchain.crypto import format_address


class ReferenceVitals:
    def __init__(self) -> None:
        self.days: dict[tuple[bytes, int], list[VitalsEntry]] = defaultdict(list)

    def add(self, batch: Batch) -> None:
        for bundle in batch.bundles:
            self._index_vitals(batch, bundle)

    def _index_vitals(self, batch: Batch, bundle: Bundle) -> None:
        """List the bundle under its patient and day (append-only)."""
        entry = VitalsEntry(
            batch_id=batch.batch_id,
            height=batch.height,
            root=batch.root,
            cid=bundle.cid,
            ciphertext_hash=bundle.ciphertext_hash,
            count=bundle.count,
            time_from_ms=bundle.time_from_ms,
            time_to_ms=bundle.time_to_ms,
            devices=bundle.devices,
        )
        self.days[(bundle.patient, bundle.day)].append(entry)

    def vitals_of(
        self, patient: bytes, from_ms: int, to_ms: int, device: bytes | None = None
    ) -> list[VitalsEntry]:
        check_vitals_range(from_ms, to_ms)
        days = range(from_ms // MS_PER_DAY, to_ms // MS_PER_DAY + 1)
        counts = [(day, len(self.days.get((patient, day), []))) for day in days]
        listed = sum(n for _, n in counts)
        if listed > MAX_VITALS_QUERY_SCAN:
            raise InvalidArgument(
                f"{format_address(patient)} has {listed} vitals bundles in the days of this "
                f"range; one query reads at most {MAX_VITALS_QUERY_SCAN}: ask for fewer days"
            )
        found = []
        for day, count in counts:
            for index in range(count):
                entry = self.days[(patient, day)][index]
                if entry.time_from_ms > to_ms or entry.time_to_ms < from_ms:
                    continue
                if device is not None and device not in entry.devices:
                    continue
                found.append(entry)
                if len(found) > MAX_VITALS_QUERY_ENTRIES:
                    raise InvalidArgument(
                        f"more than {MAX_VITALS_QUERY_ENTRIES} vitals bundles of "
                        f"{format_address(patient)} overlap this range; ask for a shorter one"
                    )
        found.sort(key=lambda e: (e.time_from_ms, e.height, e.batch_id))
        return found
