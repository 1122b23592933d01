"""What one account bulk-exports: a patient, everything they own (`/Patient/$export`);
a research organisation, its de-identified copies (`/$export`). The export jobs run in
worker threads, and an in-process chain lives in the server's thread, so `prepare`
(called on the kick-off request) reads the chain and `resources` (the jobs' source)
only reads what `prepare` left: the index, or the decrypted research copies."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from medchain.app import Role
from medchain.fhir._block_times import BlockTimes
from medchain.fhir._bulk import ExportKind
from medchain.fhir._convert import patient_fhir_id
from medchain.fhir._research import research_resource
from medchain.fhir._source import AccountSource

_KINDS = {Role.PATIENT: ExportKind.PATIENT, Role.INSTITUTION: ExportKind.SYSTEM}


class AccountExports:
    def __init__(self, source: AccountSource) -> None:
        self.source = source
        self._research: list[tuple[dict[str, Any], int | None]] = []
        self._block_times = BlockTimes(source.client.chain)

    def kinds(self) -> frozenset[ExportKind]:
        """The exports this account may run (none for a clinician)."""
        identity = self.source.client.chain.identity(self.source.address)
        kind = None if identity is None else _KINDS.get(identity.role)
        return frozenset() if kind is None else frozenset({kind})

    def prepare(self, kind: ExportKind) -> None:
        """Bring what an export of `kind` holds up to date (on the server's thread)."""
        if kind is ExportKind.PATIENT:
            self.source.sync(self.source.address)
        elif ExportKind.SYSTEM in self.kinds():
            copies = []
            for item in self.source.client.research_data():
                granted = self._block_times.at(item.entry.granted_height)
                copies.append((research_resource(item, last_updated_ms=granted), granted))
            self._research = copies

    def resources(
        self, kind: ExportKind, types: frozenset[str] | None, since_ms: int | None
    ) -> Iterator[dict[str, Any]]:
        """The export's resources, of `types` (None: all), updated since `since_ms`."""
        if kind is ExportKind.PATIENT:
            own = patient_fhir_id(self.source.address)
            for item in self.source.index.all_of(own, types, since_ms):
                yield item.resource
            return
        for resource, granted in list(self._research):
            if types is not None and resource["resourceType"] not in types:
                continue
            if since_ms is None or (granted is not None and granted >= since_ms):
                yield resource
