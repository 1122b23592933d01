"""The clinician's vital-signs form: which measurements it offers (LOINC code, UCUM
unit, the range a real reading falls in) and the FHIR Observation a filled-in form
becomes, checked before anything is sealed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from medchain.web._pages import InvalidForm

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


@dataclass(frozen=True)
class VitalSign:
    key: str
    label: str
    loinc: str
    unit: str
    low: Decimal
    high: Decimal


VITAL_SIGNS: tuple[VitalSign, ...] = (
    VitalSign("heart-rate", "Heart rate", "8867-4", "/min", Decimal(20), Decimal(300)),
    VitalSign("resp-rate", "Respiratory rate", "9279-1", "/min", Decimal(2), Decimal(80)),
    VitalSign("body-temp", "Body temperature", "8310-5", "Cel", Decimal(25), Decimal(45)),
    VitalSign("spo2", "Oxygen saturation", "2708-6", "%", Decimal(40), Decimal(100)),
    VitalSign("systolic", "Systolic blood pressure", "8480-6", "mm[Hg]", Decimal(40), Decimal(300)),
    VitalSign(
        "diastolic", "Diastolic blood pressure", "8462-4", "mm[Hg]", Decimal(20), Decimal(200)
    ),
    VitalSign("weight", "Body weight", "29463-7", "kg", Decimal("0.3"), Decimal(500)),
    VitalSign("height", "Body height", "8302-2", "cm", Decimal(20), Decimal(260)),
)
_BY_KEY = {v.key: v for v in VITAL_SIGNS}


def _measurement(form: Mapping[str, str]) -> tuple[VitalSign, Decimal]:
    sign = _BY_KEY.get(form.get("kind", ""))
    if sign is None:
        raise InvalidForm("choose which vital sign you measured")
    text = form.get("value", "").strip()
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise InvalidForm(f"the value {text[:40]!r} is not a number; type e.g. 72") from None
    if not value.is_finite() or not sign.low <= value <= sign.high:
        raise InvalidForm(
            f"{sign.label} must be between {sign.low} and {sign.high} {sign.unit}; check it"
        )
    return sign, value


def _when(form: Mapping[str, str], now: datetime) -> str:
    text = form.get("when", "").strip()
    if not text:
        return now.strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidForm(f"the time {text[:40]!r} is not a date and time") from None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if moment > now:
        raise InvalidForm("the measurement cannot be in the future; check the time")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def observation_from_form(form: Mapping[str, str], now: datetime) -> dict[str, Any]:
    """The vital-signs Observation the form describes; InvalidForm if a field is wrong."""
    sign, value = _measurement(form)
    number: int | float = int(value) if value == value.to_integral_value() else float(value)
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [_concept(OBSERVATION_CATEGORY, "vital-signs", "Vital Signs")],
        "code": _concept(LOINC, sign.loinc, sign.label),
        "effectiveDateTime": _when(form, now),
        "valueQuantity": {"value": number, "unit": sign.unit, "system": UCUM, "code": sign.unit},
    }


def _concept(system: str, code: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": text}], "text": text}
