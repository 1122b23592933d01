"""A research organisation's de-identified copy of a record, as the FHIR resource it
exports: the copy the patient's client made (`deidentify`: pseudonymised ids and
references, dates cut to the year, the PSEUDED security label), under the record's FHIR id
and the version it was made from.

No reference to the patient is added, unlike a clinical record's: the copy keeps only
the keyed pseudonyms `deidentify` put in its references, so an institution links one
patient's copies without learning who they are."""

from __future__ import annotations

import copy
from typing import Any

from medchain.client import ResearchItem, validate_resource
from medchain.gateway import show_time


def research_resource(item: ResearchItem, *, last_updated_ms: int | None = None) -> dict[str, Any]:
    """The copy in `item` as a valid FHIR R4 resource: id = the record id in hex,
    meta.versionId = the record version it was made from, its security labels kept;
    `last_updated_ms`, when given, is its meta.lastUpdated (the grant's block time).
    `item` is left as it was. InvalidFhirResource if the copy is not valid FHIR R4."""
    resource = copy.deepcopy(item.resource)
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(item.entry.source_version)
    resource["id"] = item.entry.record_id.hex()
    resource["meta"] = meta
    valid = validate_resource(resource)
    if last_updated_ms is not None:  # after validation, which would write microseconds
        valid["meta"]["lastUpdated"] = show_time(last_updated_ms)
    return valid
