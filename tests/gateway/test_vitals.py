from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation
from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.client import canonical_json
from medchain.gateway import (
    BadReading,
    DeviceKind,
    NonConformingReading,
    SimulatedDevice,
    VitalKind,
    check_signed_time,
    device_reference,
    validate_vital,
)

DEVICE = bytes(range(32))
CATEGORY = [
    {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                "code": "vital-signs",
            }
        ]
    }
]


def quantity(value: float, code: str) -> dict[str, Any]:
    return {"value": value, "unit": code, "system": "http://unitsofmeasure.org", "code": code}


def observation(code: str, system: str = "http://loinc.org", **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": copy.deepcopy(CATEGORY),
        "code": {"coding": [{"system": system, "code": code}]},
        "subject": {"reference": "Patient/pat-1"},
        "device": {"reference": device_reference(DEVICE)},
        "effectiveDateTime": "2024-05-01T08:30:00.250+02:00",
        **value,
    }


def bp(systolic: float = 120, diastolic: float = 80) -> dict[str, Any]:
    return observation(
        "85354-9",
        component=[
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
                "valueQuantity": quantity(systolic, "mm[Hg]"),
            },
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]},
                "valueQuantity": quantity(diastolic, "mm[Hg]"),
            },
        ],
    )


VALID = {
    "heart rate": (observation("8867-4", valueQuantity=quantity(72, "/min")), (72.0,)),
    "spo2": (observation("59408-5", valueQuantity=quantity(97, "%")), (97.0,)),
    "spo2 arterial": (observation("2708-6", valueQuantity=quantity(95, "%")), (95.0,)),
    "temperature": (observation("8310-5", valueQuantity=quantity(36.6, "Cel")), (36.6,)),
    "blood pressure": (bp(), (120.0, 80.0)),
    "fall": (observation("1912002", "http://snomed.info/sct", valueBoolean=True), (1.0,)),
    "no fall": (observation("1912002", "http://snomed.info/sct", valueBoolean=False), (0.0,)),
}
KINDS = {
    "heart rate": VitalKind.HEART_RATE,
    "spo2": VitalKind.OXYGEN_SATURATION,
    "spo2 arterial": VitalKind.OXYGEN_SATURATION,
    "temperature": VitalKind.BODY_TEMPERATURE,
    "blood pressure": VitalKind.BLOOD_PRESSURE,
    "fall": VitalKind.FALL,
    "no fall": VitalKind.FALL,
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_every_supported_vital_is_accepted(name: str) -> None:
    obs, values = VALID[name]
    vital = validate_vital(canonical_json(obs), DEVICE, full=True)
    assert vital.kind is KINDS[name]
    assert vital.values == values
    assert vital.patient == "pat-1"
    assert vital.status == "final"
    assert vital.time_ms == 1_714_545_000_250  # 06:30:00.250Z


def refused(obs: dict[str, Any], message: str, device: bytes = DEVICE) -> None:
    with pytest.raises(NonConformingReading, match=message) as info:
        validate_vital(canonical_json(obs), device)
    assert info.value.code == "non_conforming"
    assert isinstance(info.value, BadReading)


def hr(**changes: Any) -> dict[str, Any]:
    obs = observation("8867-4", valueQuantity=quantity(72, "/min"))
    obs.update(changes)
    return obs


@pytest.mark.parametrize(
    ("obs", "message"),
    [
        (hr(resourceType="Patient"), "resourceType"),
        (hr(note=[{"text": "hi"}]), "note outside"),
        (hr(status="amended"), "status must be one of final, preliminary"),
        (hr(status=None), "status"),
        (hr(category=[]), "category must be a non-empty array"),
        (
            hr(category=[{"coding": [{"system": "http://x", "code": "vital-signs"}]}]),
            "category must include",
        ),
        (hr(code={"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}), "no supported"),
        (
            hr(
                code={
                    "coding": [{"system": "http://loinc.org", "code": "8867-4"}] * 1
                    + [{"system": "http://loinc.org", "code": "8310-5"}]
                }
            ),
            "more than one",
        ),
        (hr(code={"coding": [{"system": "http://loinc.org", "code": " 8867-4"}]}), "no spaces"),
        (hr(subject={"reference": "Group/g"}), 'subject.reference must be "Patient/'),
        (hr(subject={"reference": "Patient/a b"}), "FHIR id"),
        (hr(subject=None), "subject must be a Reference"),
        (hr(device={"reference": device_reference(bytes(32))}), "the device that signed"),
        (hr(device=None), "device must be a Reference"),
        (hr(effectiveDateTime=None), "effectiveDateTime is required"),
        (hr(effectiveDateTime="2024-05-01"), "effectiveDateTime is required"),
        (hr(effectiveDateTime="2024-05-01T08:00:00"), "time zone"),
        (hr(effectiveDateTime="2024-02-30T08:00:00Z"), "not a real date"),
        (hr(valueQuantity=quantity(900, "/min")), "900 /min is not a plausible heart rate"),
        (hr(valueQuantity=quantity(5, "/min")), "not a plausible heart rate"),
        (hr(valueQuantity=quantity(72, "/s")), "UCUM .* '/min'"),
        (hr(valueQuantity={**quantity(72, "/min"), "system": "http://x"}), "UCUM"),
        (hr(valueQuantity={**quantity(72, "/min"), "value": "72"}), "value must be a number"),
        (hr(valueQuantity={**quantity(72, "/min"), "value": True}), "value must be a number"),
        (hr(valueQuantity={**quantity(72, "/min"), "comparator": "<"}), "comparator"),
        (hr(valueBoolean=True), "valueQuantity only, not valueBoolean"),
        (hr(valueQuantity=None), "must be an object"),
        (
            observation("59408-5", valueQuantity=quantity(101, "%")),
            "not a plausible oxygen saturation",
        ),
        (
            observation("8310-5", valueQuantity=quantity(50, "Cel")),
            "not a plausible body temperature",
        ),
        (observation("8310-5", valueQuantity=quantity(37, "[degF]")), "'Cel'"),
        (bp(320, 80), "not a plausible systolic"),
        (bp(120, 10), "not a plausible diastolic"),
        (bp(80, 90), r"diastolic pressure \(90\) must be below systolic \(80\)"),
        ({**bp(), "component": bp()["component"][:1]}, "exactly two components"),
        ({**bp(), "component": bp()["component"][:1] * 2}, "appears twice"),
        ({**bp(), "valueQuantity": quantity(1, "mm[Hg]")}, "component only"),
        (observation("1912002", "http://snomed.info/sct"), "valueBoolean only"),
        (observation("1912002", "http://snomed.info/sct", valueBoolean="yes"), "true or false"),
    ],
)
def test_each_rule_is_enforced_with_its_message(obs: dict[str, Any], message: str) -> None:
    refused(obs, message)


def test_the_signed_time_is_the_observations_time() -> None:
    vital = validate_vital(canonical_json(hr()), DEVICE)
    assert vital.time_ms == 1_714_545_000_250  # 2024-05-01T06:30:00.250Z
    check_signed_time(vital, vital.time_ms)
    check_signed_time(vital, vital.time_ms + 999)  # a dateTime to the second covers it
    for offset in (-1, 1_000, -3_600_000, 86_400_000):
        with pytest.raises(NonConformingReading, match="is not the reading's signed time"):
            check_signed_time(vital, vital.time_ms + offset)
    with pytest.raises(NonConformingReading, match=r"ts=\d+ \(after the year 9999\)"):
        check_signed_time(vital, 2**63 - 1)


def test_bytes_must_be_canonical_json_observations() -> None:
    obs = canonical_json(hr())
    for bad, message in [
        (b"\xff", "not JSON in UTF-8"),
        (b"[1]", "JSON object"),
        (json.dumps(hr()).encode(), "canonical JSON"),
        (obs[:-1] + b',"status":"final"}', "canonical JSON"),
        (b'{"x":NaN}', "cannot represent"),
    ]:
        with pytest.raises(NonConformingReading, match=message):
            validate_vital(bad, DEVICE)


@pytest.mark.parametrize("kind", list(DeviceKind))
def test_simulated_observations_pass_fhir_resources_too(kind: DeviceKind) -> None:
    device = SimulatedDevice(kind, "p-9", seed=3)
    for signed in device.stream(30):
        validate_vital(signed.reading.observation, device.keys.public_key, full=True)


# Mutations of valid observations: whatever the fast path accepts, fhir.resources accepts.
_PATHS = [
    ("status",),
    ("subject", "reference"),
    ("code", "coding", 0, "code"),
    ("code", "coding", 0, "display"),
    ("code", "text"),
    ("category", 0, "coding", 0, "system"),
    ("valueQuantity", "value"),
    ("valueQuantity", "unit"),
    ("effectiveDateTime",),
    ("id",),
]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from(["final", " x", "x ", "\t", "a\nb", "2024-05-01T08:30:00Z", "Patient/1"]),
    st.lists(st.integers(), max_size=2),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(_PATHS), _VALUES)
def test_fast_path_never_accepts_what_fhir_resources_refuses(
    path: tuple[str | int, ...], value: Any
) -> None:
    obs = hr()
    target: Any = obs
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    try:
        data = canonical_json(obs)
    except Exception:
        return
    try:
        validate_vital(data, DEVICE)
    except NonConformingReading:
        return
    Observation.model_validate(json.loads(data))
