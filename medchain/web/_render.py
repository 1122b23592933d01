"""FHIR resources as a person reads them: a title, a date and a few labelled lines
per common type (the raw JSON stays one click away on the record's page)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Resource = Mapping[str, Any]


@dataclass(frozen=True)
class RecordView:
    kind: str
    """What kind of record, in words (e.g. "Observation")."""
    title: str
    date: str
    lines: tuple[tuple[str, str], ...]


def concept(value: Any) -> str:
    """A CodeableConcept in words: its text, else its first coding's display or code."""
    if not isinstance(value, Mapping):
        return ""
    if value.get("text"):
        return str(value["text"])
    for coding in value.get("coding") or ():
        if isinstance(coding, Mapping) and (coding.get("display") or coding.get("code")):
            return str(coding.get("display") or coding.get("code"))
    return ""


def quantity(value: Any) -> str:
    if not isinstance(value, Mapping) or "value" not in value:
        return ""
    unit = value.get("unit") or value.get("code") or ""
    return f"{value['value']} {unit}".strip()


def _first_text(items: Any, key: str) -> str:
    for item in items or ():
        if isinstance(item, Mapping) and item.get(key):
            return str(item[key])
    return ""


def _date(resource: Resource, *keys: str) -> str:
    for key in keys:
        value = resource.get(key)
        if isinstance(value, Mapping):
            value = value.get("start")
        if isinstance(value, str) and value:
            return value
    return ""


def _range(ranges: Any) -> str:
    shown = []
    for item in ranges or ():
        if not isinstance(item, Mapping):
            continue
        low, high = quantity(item.get("low")), quantity(item.get("high"))
        text = item.get("text") or (f"{low} to {high}" if low and high else low or high)
        if text:
            shown.append(str(text))
    return "; ".join(shown)


def _lines(*pairs: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple((label, value) for label, value in pairs if value)


def _observation(r: Resource) -> RecordView:
    components = [
        (concept(c.get("code")), quantity(c.get("valueQuantity")))
        for c in r.get("component") or ()
        if isinstance(c, Mapping)
    ]
    value = quantity(r.get("valueQuantity")) or concept(r.get("valueCodeableConcept"))
    value = value or str(r.get("valueString") or "")
    return RecordView(
        "Observation",
        concept(r.get("code")) or "Observation",
        _date(r, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
        _lines(
            ("Value", value),
            *components,
            ("Reference range", _range(r.get("referenceRange"))),
            ("Interpretation", ", ".join(concept(i) for i in r.get("interpretation") or ())),
            ("Status", str(r.get("status") or "")),
        ),
    )


def _condition(r: Resource) -> RecordView:
    return RecordView(
        "Condition",
        concept(r.get("code")) or "Condition",
        _date(r, "onsetDateTime", "onsetPeriod", "recordedDate"),
        _lines(
            ("Clinical status", concept(r.get("clinicalStatus"))),
            ("Verification", concept(r.get("verificationStatus"))),
            ("Severity", concept(r.get("severity"))),
            ("Body site", ", ".join(concept(s) for s in r.get("bodySite") or ())),
        ),
    )


def _allergy(r: Resource) -> RecordView:
    reactions = [
        concept(m)
        for reaction in r.get("reaction") or ()
        if isinstance(reaction, Mapping)
        for m in reaction.get("manifestation") or ()
    ]
    return RecordView(
        "Allergy or intolerance",
        concept(r.get("code")) or "Allergy",
        _date(r, "onsetDateTime", "recordedDate"),
        _lines(
            ("Criticality", str(r.get("criticality") or "")),
            ("Reactions", ", ".join(x for x in reactions if x)),
            ("Clinical status", concept(r.get("clinicalStatus"))),
        ),
    )


def _medication(r: Resource) -> RecordView:
    request = r.get("resourceType") == "MedicationRequest"
    dosage = _first_text(r.get("dosageInstruction" if request else "dosage"), "text")
    return RecordView(
        "Medication prescribed" if request else "Medication taken",
        concept(r.get("medicationCodeableConcept")) or "Medication",
        _date(r, "authoredOn") if request else _date(r, "effectiveDateTime", "effectivePeriod"),
        _lines(
            ("Dosage", dosage),
            ("Status", str(r.get("status") or "")),
            ("Intent", str(r.get("intent") or "")),
        ),
    )


def _immunization(r: Resource) -> RecordView:
    return RecordView(
        "Immunization",
        concept(r.get("vaccineCode")) or "Immunization",
        _date(r, "occurrenceDateTime", "recorded"),
        _lines(("Status", str(r.get("status") or "")), ("Lot", str(r.get("lotNumber") or ""))),
    )


def _report(r: Resource) -> RecordView:
    return RecordView(
        "Diagnostic report",
        concept(r.get("code")) or "Diagnostic report",
        _date(r, "effectiveDateTime", "effectivePeriod", "issued"),
        _lines(
            ("Conclusion", str(r.get("conclusion") or "")),
            ("Results", str(len(r.get("result") or ())) if r.get("result") else ""),
            ("Status", str(r.get("status") or "")),
        ),
    )


def _procedure(r: Resource) -> RecordView:
    return RecordView(
        "Procedure",
        concept(r.get("code")) or "Procedure",
        _date(r, "performedDateTime", "performedPeriod"),
        _lines(("Outcome", concept(r.get("outcome"))), ("Status", str(r.get("status") or ""))),
    )


_BY_TYPE: dict[str, Callable[[Resource], RecordView]] = {
    "Observation": _observation,
    "Condition": _condition,
    "AllergyIntolerance": _allergy,
    "MedicationStatement": _medication,
    "MedicationRequest": _medication,
    "Immunization": _immunization,
    "DiagnosticReport": _report,
    "Procedure": _procedure,
}


def render(resource: Resource) -> RecordView:
    """`resource` for people; a type without its own view shows its type and code (its
    JSON is on the record's page)."""
    kind = str(resource.get("resourceType") or "Resource")
    view = _BY_TYPE.get(kind)
    if view is not None:
        return view(resource)
    return RecordView(kind, concept(resource.get("code")) or kind, "", ())
