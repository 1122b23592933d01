"""Chain records <-> FHIR resources, in one place: the REST facade, the web app and the
CLI all name records, patients and versions the way this module does.

A record's FHIR id is its record id in lowercase hex; a patient's is their address
text (`mc1...`), so a reference reads `Patient/mc1...`; `meta.versionId` is the
chain's 1-based version number and `meta.lastUpdated` the block time it was written
at. A resource going onto the chain loses the id and meta a client sent (the chain
assigns them) and its subject names the patient the record is written for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from medchain.app import StandingConsent
from medchain.client import ACCOUNT_SYSTEM, consent_to_fhir, validate_resource
from medchain.crypto import InvalidAddress, format_address, parse_address
from medchain.gateway import show_time

FHIR_JSON = "application/fhir+json"
PATIENT = "Patient"
CONSENT = "Consent"
CONSENT_ID_PREFIX = "medchain-consent-"

PATIENT_ELEMENT: Mapping[str, str] = {
    "AllergyIntolerance": "patient",
    "Immunization": "patient",
    "Consent": "patient",
    "Observation": "subject",
    "Condition": "subject",
    "MedicationStatement": "subject",
    "MedicationRequest": "subject",
    "DiagnosticReport": "subject",
    "Procedure": "subject",
    "Encounter": "subject",
    "DocumentReference": "subject",
}
"""The element naming the patient a resource is about, per resource type stored."""

RECORD_TYPES: tuple[str, ...] = tuple(sorted(t for t in PATIENT_ELEMENT if t != CONSENT))
"""The resource types the facade stores as records (and creates, updates, searches)."""

RECORD_ID_HEX = 32
"""A record id is 16 bytes (`new_record_id`), so its FHIR id 32 hex digits."""
_RECORD_ID = re.compile(rf"^[0-9a-f]{{{RECORD_ID_HEX}}}$")


def record_fhir_id(record_id: bytes) -> str:
    return record_id.hex()


def record_id_of(fhir_id: str) -> bytes | None:
    """The record id a FHIR id names, or None if it cannot name one."""
    if not _RECORD_ID.match(fhir_id):
        return None
    return bytes.fromhex(fhir_id)


def patient_fhir_id(address: bytes) -> str:
    return format_address(address)


def patient_reference(address: bytes) -> str:
    return f"{PATIENT}/{format_address(address)}"


def patient_of_reference(text: str) -> bytes | None:
    """The address in `Patient/mc1...` or `mc1...`, or None if it names no account."""
    value = text.strip().removeprefix(f"{PATIENT}/")
    try:
        return parse_address(value)
    except InvalidAddress:
        return None


def instant_of(ms: int) -> str:
    """Milliseconds since the epoch as a FHIR instant: UTC, milliseconds, `Z`."""
    return show_time(ms)


def subject_of(resource: Mapping[str, Any]) -> bytes | None:
    """The patient a resource's subject (or patient) element references, if it names one."""
    element = PATIENT_ELEMENT.get(str(resource.get("resourceType", "")))
    reference = resource.get(element) if element else None
    if not isinstance(reference, Mapping) or not isinstance(reference.get("reference"), str):
        return None
    return patient_of_reference(reference["reference"])


def with_patient(resource: Mapping[str, Any], patient: bytes) -> dict[str, Any]:
    """`resource` with its subject (or patient) element referencing `patient`."""
    result = dict(resource)
    element = PATIENT_ELEMENT.get(str(result.get("resourceType", "")))
    if element:
        result[element] = {"reference": patient_reference(patient)}
    return result


def for_chain(resource: Mapping[str, Any], patient: bytes) -> dict[str, Any]:
    """What a record stores: the resource without the id and meta the chain assigns,
    its subject set to `patient`."""
    stripped = {k: v for k, v in resource.items() if k not in ("id", "meta")}
    return with_patient(stripped, patient)


def record_resource(
    stored: Mapping[str, Any], record_id: bytes, version: int, updated_ms: int, patient: bytes
) -> dict[str, Any]:
    """A decrypted record version as the FHIR resource the facade serves."""
    resource = with_patient(stored, patient)
    meta = dict(resource.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = instant_of(updated_ms)
    resource["id"] = record_fhir_id(record_id)
    resource["meta"] = meta
    return resource


def patient_resource(address: bytes, profile: Mapping[str, Any]) -> dict[str, Any]:
    """A patient's own (decrypted) profile as a Patient resource."""
    text = format_address(address)
    resource: dict[str, Any] = {
        "resourceType": PATIENT,
        "id": text,
        "meta": {"versionId": "1"},
        "identifier": [{"system": ACCOUNT_SYSTEM, "value": text}],
        "active": True,
    }
    name = profile.get("name")
    if isinstance(name, str) and name.strip():
        resource["name"] = [{"text": name.strip()}]
    return validate_resource(resource)


def consent_fhir_id(consent_id: int) -> str:
    return f"{CONSENT_ID_PREFIX}{consent_id}"


def consent_resource(consent: StandingConsent) -> dict[str, Any]:
    """A standing consent as a Consent resource, its patient referenced as records' are."""
    resource = consent_to_fhir(consent)
    resource["patient"] = {
        **resource["patient"],
        "reference": patient_reference(consent.patient),
    }
    resource["meta"] = {"versionId": "1"}
    return resource
