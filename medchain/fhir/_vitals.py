"""A vitals reading committed by the edge gateway, as the FHIR R4 vital-signs Observation
an EHR searches for: category vital-signs, the LOINC code of the measurement (SNOMED CT
for a fall, which has no LOINC vital-sign code), the value in UCUM, blood pressure as its
systolic and diastolic components. Each measurement claims the R4 profile it follows.

The reading itself stays the device's signed Observation; this is the view a reader gets
after `read_vitals` decrypted and checked it, with the ids medchain gives it (the
patient's and the device's addresses, an id derived from the reading id)."""

from __future__ import annotations

import json
from typing import Any, Final

from medchain.crypto import format_address
from medchain.gateway import FALL_CODE, VitalKind, VitalReading, show_time

LOINC: Final = "http://loinc.org"
SNOMED: Final = "http://snomed.info/sct"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
READING_ID_SYSTEM: Final = "urn:medchain:reading-id"
"""The identifier system of the full reading id (the Observation id holds 60 of its 64
hex digits); `medchain vitals prove` takes that id."""
READING_ID_PREFIX: Final = "vr-"
_ID_HEX_DIGITS: Final = 60  # a FHIR id is at most 64 characters: "vr-" and 60 digits
_PROFILE: Final = "http://hl7.org/fhir/StructureDefinition/"
_SIGNED_STATUSES: Final = ("final", "preliminary")

# kind -> (profile, LOINC code, display); the R4 profile names the code it requires.
_MEASURED: Final[dict[VitalKind, tuple[str, str, str]]] = {
    VitalKind.HEART_RATE: ("heartrate", "8867-4", "Heart rate"),
    VitalKind.OXYGEN_SATURATION: ("oxygensat", "2708-6", "Oxygen saturation in Arterial blood"),
    VitalKind.BODY_TEMPERATURE: ("bodytemp", "8310-5", "Body temperature"),
    VitalKind.BLOOD_PRESSURE: ("bp", "85354-9", "Blood pressure panel"),
}
_PULSE_OXIMETRY: Final = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
_BP_COMPONENTS: Final = (
    ("8480-6", "Systolic blood pressure"),
    ("8462-4", "Diastolic blood pressure"),
)
_UNIT_TEXT: Final = {"/min": "beats/minute", "%": "%", "Cel": "C", "mm[Hg]": "mmHg"}


def vital_observation_id(reading_id: bytes) -> str:
    """The Observation id of a reading: "vr-" and the first 60 hex digits of its id."""
    return READING_ID_PREFIX + reading_id.hex()[:_ID_HEX_DIGITS]


def vital_observation(
    reading: VitalReading, patient: bytes, *, last_updated_ms: int | None = None
) -> dict[str, Any]:
    """The reading of `patient` as a FHIR R4 vital-signs Observation (version "1": a
    reading never changes); `last_updated_ms`, when given, is its meta.lastUpdated (the
    time of the block that committed it)."""
    meta: dict[str, Any] = {"versionId": "1"}
    if last_updated_ms is not None:
        meta["lastUpdated"] = show_time(last_updated_ms)
    observation: dict[str, Any] = {
        "resourceType": "Observation",
        "id": vital_observation_id(reading.reading_id),
        "meta": meta,
        "identifier": [{"system": READING_ID_SYSTEM, "value": reading.reading_id.hex()}],
        "status": _status(reading.observation),
        "category": [_vital_signs_category()],
        "subject": {"reference": f"Patient/{format_address(patient)}"},
        "effectiveDateTime": show_time(reading.time_ms),
        "device": {"reference": f"Device/{format_address(reading.device)}"},
    }
    if reading.kind is VitalKind.FALL:
        observation["code"] = _concept(SNOMED, [(FALL_CODE, "Fall")])
        observation["valueBoolean"] = bool(reading.values[0])
        return observation
    profile, code, display = _MEASURED[reading.kind]
    meta["profile"] = [_PROFILE + profile]
    codings = [(code, display)]
    if reading.kind is VitalKind.OXYGEN_SATURATION and reading.code == _PULSE_OXIMETRY[0]:
        codings.append(_PULSE_OXIMETRY)  # the profile's code, then the device's own
    observation["code"] = _concept(LOINC, codings)
    if reading.kind is VitalKind.BLOOD_PRESSURE:
        observation["component"] = [
            {"code": _concept(LOINC, [coding]), "valueQuantity": _quantity(value, reading.unit)}
            for coding, value in zip(_BP_COMPONENTS, reading.values, strict=True)
        ]
    else:
        observation["valueQuantity"] = _quantity(reading.values[0], reading.unit)
    return observation


def _vital_signs_category() -> dict[str, Any]:
    """A fresh category each time: callers may edit the Observation they get."""
    return {
        "coding": [
            {"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}
        ],
        "text": "Vital Signs",
    }


def _concept(system: str, codings: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "coding": [{"system": system, "code": code, "display": text} for code, text in codings],
        "text": codings[0][1],
    }


def _quantity(value: float, unit: str) -> dict[str, Any]:
    number: int | float = int(value) if value.is_integer() else value
    return {"value": number, "unit": _UNIT_TEXT.get(unit, unit), "system": UCUM, "code": unit}


def _status(signed_observation: bytes) -> str:
    """The status the device signed; read_vitals accepted only final or preliminary."""
    try:
        status = json.loads(signed_observation).get("status")
    except (ValueError, AttributeError):
        status = None
    return status if status in _SIGNED_STATUSES else "final"
