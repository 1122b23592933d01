"""What the facade serves, said once: the server refuses an interaction this table does
not list, and `/metadata` is built from it, so the CapabilityStatement cannot claim
what the server does not do."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any

from medchain.fhir._convert import CONSENT, FHIR_JSON, PATIENT, RECORD_TYPES
from medchain.fhir._search import supported_parameters

FHIR_VERSION = "4.0.1"
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export"
PATIENT_EXPORT = "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/patient-export"
SECURITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/restful-security-service"

PARAMETER_TYPES: Mapping[str, str] = {
    "patient": "reference",
    "subject": "reference",
    "code": "token",
    "category": "token",
    "status": "token",
    "_id": "token",
    "date": "date",
    "_lastUpdated": "date",
}
"""The FHIR type of each search parameter; the others the search accepts (`_count`,
`_sort`, `_offset`) shape results and are not search parameters."""


class Interaction(enum.StrEnum):
    READ = "read"
    VREAD = "vread"
    HISTORY = "history-instance"
    SEARCH = "search-type"
    CREATE = "create"
    UPDATE = "update"


_RECORD_INTERACTIONS = frozenset(Interaction)
_OWN_INTERACTIONS = frozenset({Interaction.READ, Interaction.SEARCH})

INTERACTIONS: Mapping[str, frozenset[Interaction]] = {
    **{t: _RECORD_INTERACTIONS for t in RECORD_TYPES},
    PATIENT: _OWN_INTERACTIONS,
    CONSENT: _OWN_INTERACTIONS,
}
"""Per resource type served, the interactions the server routes for it."""


def supports(resource_type: str, interaction: Interaction) -> bool:
    return interaction in INTERACTIONS.get(resource_type, frozenset())


def capability_statement(base_url: str, date: str, bulk_export: bool) -> dict[str, Any]:
    """The CapabilityStatement `/metadata` serves (`date`: when this server started)."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "kind": "instance",
        "software": {"name": "medchain FHIR facade"},
        "implementation": {
            "description": "One medchain account's records, decrypted by the process "
            "holding its key",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "rest": [_rest(bulk_export)],
    }


def _rest(bulk_export: bool) -> dict[str, Any]:
    operations = []
    if bulk_export:
        operations.append({"name": "export", "definition": EXPORT})
    return {
        "mode": "server",
        "security": {
            "service": [{"coding": [{"system": SECURITY_SYSTEM, "code": "OAuth"}]}],
            "description": "Send the bearer token the server printed at start as "
            "'Authorization: Bearer <token>' on every request but /metadata.",
        },
        "resource": [_resource(t, bulk_export) for t in sorted(INTERACTIONS)],
        **({"operation": operations} if operations else {}),
    }


def _resource(resource_type: str, bulk_export: bool) -> dict[str, Any]:
    interactions = INTERACTIONS[resource_type]
    resource: dict[str, Any] = {
        "type": resource_type,
        "interaction": [{"code": i.value} for i in Interaction if i in interactions],
        "versioning": "versioned" if Interaction.VREAD in interactions else "no-version",
        "readHistory": Interaction.VREAD in interactions,
        "updateCreate": False,
        "searchParam": [
            {"name": name, "type": PARAMETER_TYPES[name]}
            for name in sorted(supported_parameters(resource_type))
            if name in PARAMETER_TYPES
        ],
    }
    if resource_type == PATIENT:
        operations = [{"name": "everything", "definition": EVERYTHING}]
        if bulk_export:
            operations.append({"name": "export", "definition": PATIENT_EXPORT})
        resource["operation"] = operations
    return resource
