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


def _text(r: Resource, key: str) -> str:
    return str(r.get(key) or "")


def _view(kind: str, title: str, date: str, *pairs: tuple[str, str]) -> RecordView:
    """A view of `kind` titled `title`; the lines whose value is empty are left out."""
    return RecordView(kind, title or kind, date, tuple((k, v) for k, v in pairs if v))


def _observation(r: Resource) -> RecordView:
    components = [
        (concept(c.get("code")), quantity(c.get("valueQuantity")))
        for c in r.get("component") or ()
        if isinstance(c, Mapping)
    ]
    value = quantity(r.get("valueQuantity")) or concept(r.get("valueCodeableConcept"))
    return _view(
        "Observation",
        concept(r.get("code")),
        _date(r, "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued"),
        ("Value", value or _text(r, "valueString")),
        *components,
        ("Reference range", _range(r.get("referenceRange"))),
        ("Interpretation", ", ".join(concept(i) for i in r.get("interpretation") or ())),
        ("Status", _text(r, "status")),
    )


def _condition(r: Resource) -> RecordView:
    return _view(
        "Condition",
        concept(r.get("code")),
        _date(r, "onsetDateTime", "onsetPeriod", "recordedDate"),
        ("Clinical status", concept(r.get("clinicalStatus"))),
        ("Verification", concept(r.get("verificationStatus"))),
        ("Severity", concept(r.get("severity"))),
        ("Body site", ", ".join(concept(s) for s in r.get("bodySite") or ())),
    )


def _allergy(r: Resource) -> RecordView:
    reactions = [
        concept(m)
        for reaction in r.get("reaction") or ()
        if isinstance(reaction, Mapping)
        for m in reaction.get("manifestation") or ()
    ]
    return _view(
        "Allergy or intolerance",
        concept(r.get("code")),
        _date(r, "onsetDateTime", "recordedDate"),
        ("Criticality", _text(r, "criticality")),
        ("Reactions", ", ".join(x for x in reactions if x)),
        ("Clinical status", concept(r.get("clinicalStatus"))),
    )


def _medication(r: Resource) -> RecordView:
    request = r.get("resourceType") == "MedicationRequest"
    dosage = _first_text(r.get("dosageInstruction" if request else "dosage"), "text")
    when = _date(r, "authoredOn") if request else _date(r, "effectiveDateTime", "effectivePeriod")
    drug = concept(r.get("medicationCodeableConcept")) or "Medication"
    kind = "Medication prescribed" if request else "Medication taken"
    return _view(
        kind,
        drug,
        when,
        ("Dosage", dosage),
        ("Status", _text(r, "status")),
        ("Intent", _text(r, "intent")),
    )


def _immunization(r: Resource) -> RecordView:
    when = _date(r, "occurrenceDateTime", "recorded")
    lines = (("Status", _text(r, "status")), ("Lot", _text(r, "lotNumber")))
    return _view("Immunization", concept(r.get("vaccineCode")), when, *lines)


def _report(r: Resource) -> RecordView:
    results = r.get("result") or ()
    return _view(
        "Diagnostic report",
        concept(r.get("code")),
        _date(r, "effectiveDateTime", "effectivePeriod", "issued"),
        ("Conclusion", _text(r, "conclusion")),
        ("Results", str(len(results)) if results else ""),
        ("Status", _text(r, "status")),
    )


def _procedure(r: Resource) -> RecordView:
    when = _date(r, "performedDateTime", "performedPeriod")
    outcome = ("Outcome", concept(r.get("outcome")))
    return _view("Procedure", concept(r.get("code")), when, outcome, ("Status", _text(r, "status")))


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
RENDERED_TYPES = tuple(_BY_TYPE)
"""The FHIR types shown in words (any other shows its type and code only)."""


def render(resource: Resource) -> RecordView:
    """`resource` for people; a type without its own view shows its type and code (its
    JSON is on the record's page)."""
    kind = str(resource.get("resourceType") or "Resource")
    view = _BY_TYPE.get(kind)
    if view is not None:
        return view(resource)
    return _view(kind, concept(resource.get("code")), "")
