"""Gateway vitals readings as FHIR R4 vital-signs Observations (medchain.fhir._vitals)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from medchain.client import canonical_json, validate_resource
from medchain.crypto import AccountKeys, address_from_public_key, format_address
from medchain.fhir import vital_observation, vital_observation_id
from medchain.fhir._vitals import READING_ID_SYSTEM
from medchain.gateway import (
    DeviceKind,
    SignedReading,
    SimulatedDevice,
    VitalKind,
    VitalReading,
    show_time,
    sign_reading,
    validate_vital,
)

PATIENT = AccountKeys.generate().address
CATEGORY = ("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
# device kind -> (kind, the profile claimed, the first coding, UCUM unit)
EXPECTED = {
    DeviceKind.HEART_RATE_BAND: (VitalKind.HEART_RATE, "heartrate", "8867-4", "/min"),
    DeviceKind.PULSE_OXIMETER: (VitalKind.OXYGEN_SATURATION, "oxygensat", "2708-6", "%"),
    DeviceKind.THERMOMETER: (VitalKind.BODY_TEMPERATURE, "bodytemp", "8310-5", "Cel"),
    DeviceKind.BLOOD_PRESSURE_CUFF: (VitalKind.BLOOD_PRESSURE, "bp", "85354-9", "mm[Hg]"),
}


def as_vital_reading(signed: SignedReading) -> VitalReading:
    """What read_vitals gives a reader for a reading the gateway committed."""
    reading = signed.reading
    vital = validate_vital(reading.observation, reading.device)
    coding = json.loads(reading.observation)["code"]["coding"][0]
    fields: dict[str, Any] = {
        "reading_id": signed.reading_id,
        "device": address_from_public_key(reading.device),
        "time_ms": reading.timestamp_ms,
        "sequence": reading.sequence,
        "kind": vital.kind,
        "system": coding["system"],
        "code": coding["code"],
        "values": vital.values,
        "unit": vital.unit,
        "observation": reading.observation,
        "batch_id": b"\x07" * 16,
        "height": 5,
    }
    return VitalReading(**fields)


def reading_of(kind: DeviceKind, seed: int = 0) -> VitalReading:
    device = SimulatedDevice(kind, format_address(PATIENT), seed=seed)
    return as_vital_reading(device.next_reading())


def codes(concept: dict[str, Any]) -> list[tuple[str, str]]:
    return [(c["system"], c["code"]) for c in concept["coding"]]


@pytest.mark.parametrize("device_kind", list(EXPECTED))
def test_each_measurement_is_a_valid_vital_signs_observation(device_kind: DeviceKind) -> None:
    reading = reading_of(device_kind)
    kind, profile, code, unit = EXPECTED[device_kind]
    assert reading.kind is kind
    observation = vital_observation(reading, PATIENT)
    assert validate_resource(observation)["id"] == observation["id"]
    assert observation["meta"]["profile"] == [f"http://hl7.org/fhir/StructureDefinition/{profile}"]
    assert observation["meta"]["versionId"] == "1"
    assert [codes(c)[0] for c in observation["category"]] == [CATEGORY]
    assert codes(observation["code"])[0] == ("http://loinc.org", code)
    assert observation["subject"] == {"reference": f"Patient/{format_address(PATIENT)}"}
    assert observation["device"] == {"reference": f"Device/{format_address(reading.device)}"}
    assert observation["effectiveDateTime"] == show_time(reading.time_ms)
    assert observation["status"] == "final"
    quantities = (
        [c["valueQuantity"] for c in observation["component"]]
        if kind is VitalKind.BLOOD_PRESSURE
        else [observation["valueQuantity"]]
    )
    assert [q["value"] for q in quantities] == list(reading.values)
    assert {(q["system"], q["code"]) for q in quantities} == {("http://unitsofmeasure.org", unit)}


def test_blood_pressure_carries_systolic_then_diastolic_components() -> None:
    reading = reading_of(DeviceKind.BLOOD_PRESSURE_CUFF)
    components = vital_observation(reading, PATIENT)["component"]
    assert [codes(c["code"]) for c in components] == [
        [("http://loinc.org", "8480-6")],
        [("http://loinc.org", "8462-4")],
    ]
    systolic, diastolic = (c["valueQuantity"]["value"] for c in components)
    assert (systolic, diastolic) == reading.values and systolic > diastolic


def test_pulse_oximetry_keeps_its_own_code_beside_the_profile_code() -> None:
    reading = reading_of(DeviceKind.PULSE_OXIMETER)
    assert reading.code == "59408-5"
    assert codes(vital_observation(reading, PATIENT)["code"]) == [
        ("http://loinc.org", "2708-6"),
        ("http://loinc.org", "59408-5"),
    ]


@pytest.mark.parametrize("detected", [True, False])
def test_a_fall_is_a_snomed_boolean_in_the_vital_signs_category(detected: bool) -> None:
    device = SimulatedDevice(DeviceKind.FALL_DETECTOR, format_address(PATIENT))
    body = device.observation(device.now_ms) | {"valueBoolean": detected}
    signed = sign_reading(device.keys, 0, device.now_ms, canonical_json(body))
    observation = vital_observation(as_vital_reading(signed), PATIENT)
    validate_resource(observation)
    assert codes(observation["code"]) == [("http://snomed.info/sct", "1912002")]
    assert observation["valueBoolean"] is detected
    assert "valueQuantity" not in observation and "profile" not in observation["meta"]
    assert [codes(c)[0] for c in observation["category"]] == [CATEGORY]


def test_the_id_is_vr_and_60_hex_digits_and_the_identifier_the_whole_reading_id() -> None:
    reading = reading_of(DeviceKind.HEART_RATE_BAND)
    observation = vital_observation(reading, PATIENT)
    assert observation["id"] == vital_observation_id(reading.reading_id)
    assert observation["id"] == "vr-" + reading.reading_id.hex()[:60]
    assert len(observation["id"]) == 63
    assert observation["identifier"] == [
        {"system": READING_ID_SYSTEM, "value": reading.reading_id.hex()}
    ]
    other = reading_of(DeviceKind.HEART_RATE_BAND, seed=1)
    assert vital_observation(other, PATIENT)["id"] != observation["id"]


def test_last_updated_is_set_only_when_given() -> None:
    reading = reading_of(DeviceKind.THERMOMETER)
    assert "lastUpdated" not in vital_observation(reading, PATIENT)["meta"]
    meta = vital_observation(reading, PATIENT, last_updated_ms=1_714_550_460_123)["meta"]
    assert meta["lastUpdated"] == "2024-05-01T08:01:00.123Z"


def test_a_preliminary_reading_stays_preliminary() -> None:
    device = SimulatedDevice(DeviceKind.HEART_RATE_BAND, format_address(PATIENT))
    body = device.observation(device.now_ms) | {"status": "preliminary"}
    signed = sign_reading(device.keys, 0, device.now_ms, canonical_json(body))
    observation = vital_observation(as_vital_reading(signed), PATIENT)
    assert observation["status"] == "preliminary"
    validate_resource(observation)
