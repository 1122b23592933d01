"""A patient's gateway vitals readings as indexed Observations, fetched a window at a
time: the first fetch covers the longest range the chain answers (a year, ending a day
after the latest block, for device clocks ahead of it); later ones start a day before
the latest block time at the previous fetch, since a gateway commits a reading some
time after its device signed it. A reader sees only the bundles sealed for it (the
patient, a guardian, a vitals reader); the Observation's lastUpdated is the time of
the block that committed it. The feed keeps the bundles it checked (`CheckedBundles`,
the web app's own when it serves the facade): a poll opens and checks only bundles
committed since, while it still asks the chain for them and compares every blob with
its hash on chain."""

from __future__ import annotations

from medchain.app import MAX_VITALS_QUERY_DAYS, MS_PER_DAY
from medchain.client import MedchainClient, NotAReader
from medchain.fhir._block_times import BlockTimes
from medchain.fhir._convert import patient_fhir_id
from medchain.fhir._index import IndexedResource
from medchain.fhir._vitals import READING_ID_PREFIX, vital_observation
from medchain.gateway import CheckedBundles, VitalReadings, read_vitals

_AHEAD_MS = MS_PER_DAY
_OVERLAP_MS = MS_PER_DAY
_FIRST_SPAN_MS = MAX_VITALS_QUERY_DAYS * MS_PER_DAY - _AHEAD_MS - 1


def is_vitals_id(fhir_id: str) -> bool:
    """Whether a FHIR id names a vitals reading's Observation (not a record)."""
    return fhir_id.startswith(READING_ID_PREFIX)


class VitalsFeed:
    """New vitals Observations per patient since the last fetch. Not thread safe: the
    source calls it under its lock."""

    def __init__(self, client: MedchainClient, checked: CheckedBundles | None = None) -> None:
        self.client = client
        self.checked = checked if checked is not None else CheckedBundles()
        self._fetched_to: dict[bytes, int] = {}
        """Per patient: the latest block time at the last fetch."""
        self._block_times = BlockTimes(client.chain)

    def fetch(self, patient: bytes) -> list[IndexedResource]:
        """The patient's readings in the window since the last fetch, as Observations
        (none if nothing in it was sealed for this account)."""
        now = self.client.chain.latest_block().header.time_ms
        to_ms = now + _AHEAD_MS
        previous = self._fetched_to.get(patient)
        earliest = to_ms - _FIRST_SPAN_MS  # the longest range the chain answers
        from_ms = earliest if previous is None else max(earliest, previous - _OVERLAP_MS)
        try:
            readings = read_vitals(
                self.client.keys, self.client.chain, patient, from_ms, to_ms, checked=self.checked
            )
        except NotAReader:
            readings = VitalReadings()
        self._fetched_to[patient] = now
        items = []
        for reading in readings:
            updated = self._block_times.at(reading.height)
            resource = vital_observation(reading, patient, last_updated_ms=updated)
            items.append(
                IndexedResource(
                    resource_type="Observation",
                    id=str(resource["id"]),
                    version=1,
                    last_updated_ms=updated or reading.time_ms,
                    patient=patient_fhir_id(patient),
                    resource=resource,
                )
            )
        return items
