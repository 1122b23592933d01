"""The gateway's vital-signs profile: is a reading's Observation a FHIR R4 vital sign we
accept, and what does it say?

The profile is closed (only the elements listed in `_ALLOWED` may appear) and small, so a
fast path can check every element in plain Python: about 25 µs a reading, against about
70 µs for fhir.resources' pydantic model and 260 µs for the client's full
`validate_resource`, at a budget of 400 µs per reading for the whole gateway pipeline
(5,000 readings/s on 2 cores). Because the profile is closed, whatever the fast path
accepts is also a valid R4 Observation (a property test holds the two together);
`full=True` runs the client's fhir.resources validation as well, for audits.

Codes: LOINC for the four vital signs (the FHIR vital-signs profile's own codes, units in
UCUM). A fall has no LOINC vital-sign code, so falls use SNOMED CT 1912002 "Fall (event)",
the concept clinical systems record a fall with, as a boolean (true: a fall was detected,
false: the detector reports none). It keeps the vital-signs category so that one
profile, one category, covers everything a home monitor streams.

Error messages name the element and the rule; values may be PHI but a gateway's own
device readings are echoed back only to the device that sent them.
"""

from __future__ import annotations

import enum
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from medchain.client import InvalidFhirResource, canonical_json, validate_resource
from medchain.gateway._readings import BadReading

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS = "vital-signs"
ACCEPTED_STATUSES = ("final", "preliminary")

_URI = re.compile(r"\S+")
_CODE = re.compile(r"[^\s]+( [^\s]+)*")
_FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
# FHIR dateTime to the second at least, with a zone: a device reading is a point in time.
_DATE_TIME = re.compile(
    r"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(\.\d{1,9})?(Z|[+-]((0\d|1[0-3]):[0-5]\d|14:00))"
)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class NonConformingReading(BadReading):
    """An Observation outside the gateway's vital-signs profile; the message names the
    element and the rule it breaks."""

    code = "non_conforming"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="non_conforming")


class VitalKind(enum.Enum):
    HEART_RATE = "heart-rate"
    OXYGEN_SATURATION = "oxygen-saturation"
    BODY_TEMPERATURE = "body-temperature"
    BLOOD_PRESSURE = "blood-pressure"
    FALL = "fall"


@dataclass(frozen=True)
class VitalSpec:
    """One measured quantity: its LOINC code, UCUM unit and plausible physiological range
    (values outside it come from a broken or lying device, not from a patient)."""

    name: str
    code: str
    unit: str
    low: float
    high: float


HEART_RATE = VitalSpec("heart rate", "8867-4", "/min", 20, 300)
OXYGEN_SATURATION = VitalSpec("oxygen saturation", "59408-5", "%", 50, 100)
OXYGEN_SATURATION_ARTERIAL = VitalSpec("oxygen saturation", "2708-6", "%", 50, 100)
BODY_TEMPERATURE = VitalSpec("body temperature", "8310-5", "Cel", 25, 45)
SYSTOLIC = VitalSpec("systolic blood pressure", "8480-6", "mm[Hg]", 50, 300)
DIASTOLIC = VitalSpec("diastolic blood pressure", "8462-4", "mm[Hg]", 20, 200)
BLOOD_PRESSURE_PANEL = "85354-9"
FALL_CODE = "1912002"

_SINGLE: dict[str, tuple[VitalKind, VitalSpec]] = {
    HEART_RATE.code: (VitalKind.HEART_RATE, HEART_RATE),
    OXYGEN_SATURATION.code: (VitalKind.OXYGEN_SATURATION, OXYGEN_SATURATION),
    OXYGEN_SATURATION_ARTERIAL.code: (VitalKind.OXYGEN_SATURATION, OXYGEN_SATURATION_ARTERIAL),
    BODY_TEMPERATURE.code: (VitalKind.BODY_TEMPERATURE, BODY_TEMPERATURE),
}
_SUPPORTED = {(LOINC, code) for code in (*_SINGLE, BLOOD_PRESSURE_PANEL)} | {(SNOMED, FALL_CODE)}
_SUPPORTED_TEXT = (
    "LOINC 8867-4 heart rate, 59408-5 or 2708-6 oxygen saturation, 8310-5 body temperature, "
    "85354-9 blood pressure panel, or SNOMED CT 1912002 fall"
)

_ALLOWED = frozenset(
    {
        "resourceType",
        "id",
        "status",
        "category",
        "code",
        "subject",
        "device",
        "effectiveDateTime",
        "valueQuantity",
        "valueBoolean",
        "component",
    }
)
_CODING_KEYS = frozenset({"system", "code", "display"})
_CONCEPT_KEYS = frozenset({"coding", "text"})
_REFERENCE_KEYS = frozenset({"reference", "display"})
_QUANTITY_KEYS = frozenset({"value", "unit", "system", "code"})
_COMPONENT_KEYS = frozenset({"code", "valueQuantity"})


@dataclass(frozen=True)
class VitalSign:
    """What a conforming reading says. `values` is one number, or (systolic, diastolic)
    for blood pressure, or (1.0,) / (0.0,) for a fall detected / not detected."""

    kind: VitalKind
    values: tuple[float, ...]
    unit: str
    time_ms: int
    patient: str
    status: str
    system: str
    """The one supported coding of `code`: its system (SNOMED CT for a fall) and code,
    found here once so that a reader need not parse the Observation again."""
    code: str


def check_signed_time(vital: VitalSign, timestamp_ms: int) -> None:
    """The reading's signed time (`ts`) and its Observation's effectiveDateTime must name
    the same moment: the gateway files and finds a reading by `ts`, a reader sees
    effectiveDateTime, and a reading must not tell two stories. A dateTime written to
    the second (or the millisecond) covers that second, so `ts` may fall anywhere in it."""
    if not vital.time_ms <= timestamp_ms < vital.time_ms + 1_000:
        raise NonConformingReading(
            f"effectiveDateTime ({_iso_text(vital.time_ms)}) is not the reading's signed "
            f"time ts={timestamp_ms} ({_iso_text(timestamp_ms)}); sign the moment the "
            "Observation says it was taken"
        )


def _iso_text(ms: int) -> str:
    try:
        return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    except OverflowError:  # a signed time past the year 9999
        return "after the year 9999"


def device_reference(device: bytes) -> str:
    """The FHIR reference to a device: its public key in hex is its Device id."""
    return f"Device/{device.hex()}"


def validate_vital(observation: bytes, device: bytes, *, full: bool = False) -> VitalSign:
    """Check that `observation` (canonical JSON bytes) is a vital sign from `device` under
    the gateway's profile; return what it says or raise NonConformingReading.

    `full=True` also validates it with fhir.resources (slower; the closed profile already
    implies it)."""
    obj = _parse(observation)
    result = _check(obj, device)
    if full:
        try:
            validate_resource(obj)
        except InvalidFhirResource as exc:
            raise NonConformingReading(exc.message) from None
    return result


def _parse(observation: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(observation.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise NonConformingReading(f"the observation is not JSON in UTF-8: {exc}") from None
    if not isinstance(obj, dict):
        raise NonConformingReading("the observation must be a JSON object")
    try:
        canonical = canonical_json(obj)
    except InvalidFhirResource:
        raise NonConformingReading("the observation holds a number JSON cannot represent") from None
    if canonical != observation:
        raise NonConformingReading(
            "the observation is not in canonical JSON (sorted keys, no spaces, UTF-8, each "
            "key once); encode it with medchain.client.canonical_json before signing"
        )
    return obj


def _check(obj: dict[str, Any], device: bytes) -> VitalSign:
    if obj.get("resourceType") != "Observation":
        raise NonConformingReading('resourceType must be "Observation"')
    _only(obj, _ALLOWED, "Observation")
    if "id" in obj:
        _fhir_id(obj["id"], "id")
    status = obj.get("status")
    if status not in ACCEPTED_STATUSES:
        raise NonConformingReading(
            f"status must be one of {', '.join(ACCEPTED_STATUSES)}; a device reading is a "
            "measurement, not a plan or a correction"
        )
    categories = _list(obj.get("category"), "category")
    category_codes = set()
    for i, concept in enumerate(categories):
        category_codes |= _concept(concept, f"category[{i}]")
    if (OBSERVATION_CATEGORY, VITAL_SIGNS) not in category_codes:
        raise NonConformingReading(
            f'category must include the coding {OBSERVATION_CATEGORY}|"{VITAL_SIGNS}"'
        )
    patient = _reference(obj.get("subject"), "subject", "Patient")
    expected_device = device_reference(device)
    if _reference(obj.get("device"), "device", "Device") != expected_device.removeprefix("Device/"):
        raise NonConformingReading(
            f"device.reference must be {expected_device}, the device that signed the reading"
        )
    time_ms = _date_time(obj.get("effectiveDateTime"))
    codes = _concept(obj.get("code"), "code") & _SUPPORTED
    if len(codes) != 1:
        what = "no supported code" if not codes else "more than one supported code"
        raise NonConformingReading(f"code has {what}; it needs exactly one of {_SUPPORTED_TEXT}")
    ((system, code),) = codes
    present = {"valueQuantity", "valueBoolean", "component"} & obj.keys()
    if system == SNOMED:
        _exactly(present, {"valueBoolean"}, "a fall")
        detected = obj["valueBoolean"]
        if type(detected) is not bool:
            raise NonConformingReading("valueBoolean must be true or false")
        return VitalSign(
            VitalKind.FALL, (1.0 if detected else 0.0,), "", time_ms, patient, status, system, code
        )
    if code == BLOOD_PRESSURE_PANEL:
        _exactly(present, {"component"}, "a blood pressure panel")
        systolic, diastolic = _blood_pressure(obj["component"])
        return VitalSign(
            VitalKind.BLOOD_PRESSURE,
            (systolic, diastolic),
            "mm[Hg]",
            time_ms,
            patient,
            status,
            system,
            code,
        )
    kind, spec = _SINGLE[code]
    _exactly(present, {"valueQuantity"}, f"a {spec.name}")
    value = _quantity(obj["valueQuantity"], spec, "valueQuantity")
    return VitalSign(kind, (value,), spec.unit, time_ms, patient, status, system, code)


def _blood_pressure(components: Any) -> tuple[float, float]:
    found: dict[str, float] = {}
    specs = {SYSTOLIC.code: SYSTOLIC, DIASTOLIC.code: DIASTOLIC}
    for i, component in enumerate(_list(components, "component")):
        where = f"component[{i}]"
        if not isinstance(component, dict):
            raise NonConformingReading(f"{where} must be an object")
        _only(component, _COMPONENT_KEYS, where)
        codes = {
            code
            for system, code in _concept(component.get("code"), f"{where}.code")
            if system == LOINC and code in specs
        }
        if len(codes) != 1:
            raise NonConformingReading(
                f"{where}.code must carry exactly one of LOINC 8480-6 (systolic) or 8462-4 "
                "(diastolic)"
            )
        (code,) = codes
        if code in found:
            raise NonConformingReading(f"{where}: {specs[code].name} appears twice")
        if "valueQuantity" not in component:
            raise NonConformingReading(f"{where}.valueQuantity is required")
        found[code] = _quantity(component["valueQuantity"], specs[code], f"{where}.valueQuantity")
    if found.keys() != specs.keys():
        raise NonConformingReading(
            "a blood pressure panel needs exactly two components: systolic (8480-6) and "
            "diastolic (8462-4)"
        )
    systolic, diastolic = found[SYSTOLIC.code], found[DIASTOLIC.code]
    if diastolic >= systolic:
        raise NonConformingReading(
            f"diastolic pressure ({diastolic:g}) must be below systolic ({systolic:g})"
        )
    return systolic, diastolic


def _quantity(quantity: Any, spec: VitalSpec, where: str) -> float:
    if not isinstance(quantity, dict):
        raise NonConformingReading(f"{where} must be an object")
    _only(quantity, _QUANTITY_KEYS, where)
    if quantity.get("system") != UCUM or quantity.get("code") != spec.unit:
        raise NonConformingReading(
            f"{where} must be in UCUM ({UCUM}) with code {spec.unit!r} for {spec.name}"
        )
    if "unit" in quantity:
        _string(quantity["unit"], f"{where}.unit")
    value: Any = quantity.get("value")
    if type(value) not in (int, float) or not math.isfinite(value):
        raise NonConformingReading(f"{where}.value must be a number")
    if not spec.low <= value <= spec.high:
        raise NonConformingReading(
            f"{where}.value {value:g} {spec.unit} is not a plausible {spec.name} (expected "
            f"{spec.low:g} to {spec.high:g})"
        )
    return float(value)


def _concept(concept: Any, where: str) -> set[tuple[str, str]]:
    """The (system, code) pairs of a CodeableConcept, after checking its shape."""
    if not isinstance(concept, dict):
        raise NonConformingReading(f"{where} must be a CodeableConcept object")
    _only(concept, _CONCEPT_KEYS, where)
    if "text" in concept:
        _string(concept["text"], f"{where}.text")
    pairs = set()
    for i, coding in enumerate(_list(concept.get("coding"), f"{where}.coding")):
        here = f"{where}.coding[{i}]"
        if not isinstance(coding, dict):
            raise NonConformingReading(f"{here} must be an object")
        _only(coding, _CODING_KEYS, here)
        system = _string(coding.get("system"), f"{here}.system")
        code = _string(coding.get("code"), f"{here}.code")
        if not _URI.fullmatch(system) or not _CODE.fullmatch(code):
            raise NonConformingReading(
                f"{here}: a system is a URI without spaces and a code has no spaces at its ends"
            )
        if "display" in coding:
            _string(coding["display"], f"{here}.display")
        pairs.add((system, code))
    return pairs


def _reference(reference: Any, where: str, resource_type: str) -> str:
    """The id in a `{"reference": "Type/id"}` Reference, after checking its shape."""
    if not isinstance(reference, dict):
        raise NonConformingReading(f"{where} must be a Reference to a {resource_type}")
    _only(reference, _REFERENCE_KEYS, where)
    if "display" in reference:
        _string(reference["display"], f"{where}.display")
    text = reference.get("reference")
    prefix = f"{resource_type}/"
    if type(text) is not str or not text.startswith(prefix):
        raise NonConformingReading(f'{where}.reference must be "{prefix}<id>"')
    return _fhir_id(text[len(prefix) :], f"{where}.reference")


def _date_time(value: Any) -> int:
    if type(value) is not str or not _DATE_TIME.fullmatch(value):
        raise NonConformingReading(
            "effectiveDateTime is required: a FHIR dateTime with seconds and a time zone, "
            'e.g. "2024-05-01T08:30:00.000Z"'
        )
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise NonConformingReading(f"effectiveDateTime {value!r} is not a real date") from None
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if ms < 0:
        raise NonConformingReading("effectiveDateTime is before 1970")
    return ms


def _fhir_id(value: Any, where: str) -> str:
    if type(value) is not str or not _FHIR_ID.fullmatch(value):
        raise NonConformingReading(
            f"{where} must hold a FHIR id (1 to 64 letters, digits, '-' or '.')"
        )
    return value


def _string(value: Any, where: str) -> str:
    # FHIR strings are non-empty and never whitespace only.
    if type(value) is not str or not value.strip():
        raise NonConformingReading(f"{where} must be a non-empty string")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if type(value) is not list or not value:
        raise NonConformingReading(f"{where} must be a non-empty array")
    return value


def _only(obj: dict[str, Any], allowed: frozenset[str], where: str) -> None:
    extra = obj.keys() - allowed
    if extra:
        raise NonConformingReading(
            f"{where} has element(s) {', '.join(sorted(extra))} outside the gateway's "
            f"vital-signs profile (allowed: {', '.join(sorted(allowed))})"
        )


def _exactly(present: set[str], wanted: set[str], what: str) -> None:
    if present != wanted:
        raise NonConformingReading(
            f"{what} carries its value in {' and '.join(sorted(wanted))} only"
            + (f", not {', '.join(sorted(present - wanted))}" if present - wanted else "")
        )
