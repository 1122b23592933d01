"""The everyday records a clinician adds by form (a condition, an allergy, a medication
taken) and an uploaded FHIR resource: what each form offers, and the resource a filled-in
form becomes, with its patient reference set and checked as FHIR before anything is
sealed. Pure functions: the routes seal what these return."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from medchain.client import InvalidFhirResource, validate_resource
from medchain.web._clinician import MAX_RECORD_BYTES
from medchain.web._pages import InvalidForm
from medchain.web._render import RENDERED_TYPES

SNOMED = "http://snomed.info/sct"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
OTHER = "other"
"""The choice in a code list that leaves the name to the free text."""


@dataclass(frozen=True)
class Choice:
    value: str
    label: str


CONDITIONS = (
    Choice("38341003", "Hypertension"),
    Choice("44054006", "Type 2 diabetes mellitus"),
    Choice("195967001", "Asthma"),
    Choice("13645005", "Chronic obstructive lung disease"),
    Choice("49436004", "Atrial fibrillation"),
    Choice("55822004", "Hyperlipidaemia"),
    Choice("35489007", "Depressive disorder"),
    Choice("709044004", "Chronic kidney disease"),
    Choice("233604007", "Pneumonia"),
)
SUBSTANCES = (
    Choice("764146007", "Penicillin"),
    Choice("387458008", "Aspirin"),
    Choice("387207008", "Ibuprofen"),
    Choice("111088007", "Latex"),
    Choice("762952008", "Peanut"),
)
MEDICATIONS = (
    Choice("387517004", "Paracetamol"),
    Choice("372567009", "Metformin"),
    Choice("386864001", "Amlodipine"),
    Choice("386873009", "Lisinopril"),
    Choice("372756006", "Warfarin"),
    Choice("372897005", "Salbutamol"),
    Choice("387458008", "Aspirin"),
)
UPLOAD_FORM_BYTES = 4 * MAX_RECORD_BYTES
"""The largest upload form read: a record's JSON, percent-encoded or as a file."""
CONDITION_STATUSES = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
CRITICALITIES = ("low", "high", "unable-to-assess")
MEDICATION_STATUSES = ("active", "completed", "intended", "stopped", "on-hold", "not-taken")
_PATIENT_FIELD = {"AllergyIntolerance": "patient", "Immunization": "patient"}
"""Where a rendered type names its patient when it is not `subject`."""


def _coded(form: Mapping[str, str], choices: tuple[Choice, ...], what: str) -> dict[str, Any]:
    """A CodeableConcept from the form's `code` (a listed SNOMED CT code, or OTHER) and
    its free `text`, which names the thing when no code is chosen."""
    code = form.get("code", OTHER)
    text = form.get("text", "").strip()
    if code == OTHER:
        if not text:
            raise InvalidForm(f"choose the {what} from the list or type its name")
        return {"text": text}
    chosen = next((c for c in choices if c.value == code), None)
    if chosen is None:
        raise InvalidForm(f"choose the {what} from the list (or “other” and type its name)")
    coding = {"system": SNOMED, "code": chosen.value, "display": chosen.label}
    return {"coding": [coding], "text": text or chosen.label}


def _one_of(form: Mapping[str, str], key: str, allowed: tuple[str, ...], what: str) -> str:
    value = form.get(key, "")
    if value not in allowed:
        raise InvalidForm(f"the {what} {value[:40]!r} is not one of: {', '.join(allowed)}")
    return value


def _day(form: Mapping[str, str], key: str, today: date, what: str) -> str | None:
    """The form's date `key` (YYYY-MM-DD), not after `today`; None when left empty."""
    text = form.get(key, "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        shown = text[:40]
        raise InvalidForm(f"the {what} {shown!r} is not a date; give it as YYYY-MM-DD") from None
    if day > today:
        raise InvalidForm(f"the {what} cannot be in the future; check it")
    return day.isoformat()


def _status(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def sealable(resource: Mapping[str, Any], patient: str) -> dict[str, Any]:
    """`resource` about `patient` (its address), checked as FHIR R4: what the app seals.
    Its patient reference is set to `patient`, whom the chain seals it for."""
    kind = str(resource.get("resourceType") or "")
    about = {**resource, _PATIENT_FIELD.get(kind, "subject"): {"reference": f"Patient/{patient}"}}
    try:
        return validate_resource(about)
    except InvalidFhirResource as exc:
        raise InvalidForm(exc.message) from None


def condition_from_form(form: Mapping[str, str], patient: str, today: date) -> dict[str, Any]:
    """The Condition the form describes; InvalidForm if a field is wrong."""
    resource: dict[str, Any] = {
        "resourceType": "Condition",
        "clinicalStatus": _status(
            CONDITION_CLINICAL, _one_of(form, "status", CONDITION_STATUSES, "clinical status")
        ),
        "code": _coded(form, CONDITIONS, "condition"),
    }
    onset = _day(form, "onset", today, "onset date")
    if onset:
        resource["onsetDateTime"] = onset
    return sealable(resource, patient)


def allergy_from_form(form: Mapping[str, str], patient: str, today: date) -> dict[str, Any]:
    """The AllergyIntolerance the form describes (active); InvalidForm if a field is wrong."""
    resource: dict[str, Any] = {
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": _status(ALLERGY_CLINICAL, "active"),
        "code": _coded(form, SUBSTANCES, "substance"),
        "criticality": _one_of(form, "criticality", CRITICALITIES, "criticality"),
        "recordedDate": today.isoformat(),
    }
    reaction = form.get("reaction", "").strip()
    if reaction:
        resource["reaction"] = [{"manifestation": [{"text": reaction}]}]
    return sealable(resource, patient)


def medication_from_form(form: Mapping[str, str], patient: str, today: date) -> dict[str, Any]:
    """The MedicationStatement the form describes; InvalidForm if a field is wrong."""
    resource: dict[str, Any] = {
        "resourceType": "MedicationStatement",
        "status": _one_of(form, "status", MEDICATION_STATUSES, "status"),
        "medicationCodeableConcept": _coded(form, MEDICATIONS, "medication"),
    }
    dosage = form.get("dosage", "").strip()
    if dosage:
        resource["dosage"] = [{"text": dosage}]
    effective = _day(form, "effective", today, "date taken")
    if effective:
        resource["effectiveDateTime"] = effective
    return sealable(resource, patient)


def resource_from_upload(text: str, patient: str) -> dict[str, Any]:
    """An uploaded FHIR R4 resource (JSON) of a type the app renders, about `patient`."""
    if len(text.encode("utf-8")) > MAX_RECORD_BYTES:
        raise InvalidForm(f"a record is at most {MAX_RECORD_BYTES // 1024} KiB of JSON")
    if not text.strip():
        raise InvalidForm("paste a FHIR resource as JSON or choose a file")
    try:
        resource = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidForm(f"that is not JSON ({exc.msg}, line {exc.lineno}); fix it") from None
    if not isinstance(resource, dict):
        raise InvalidForm("that is JSON but not a FHIR resource (a JSON object); fix it")
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        raise InvalidForm('that JSON has no "resourceType": it is not a FHIR resource; fix it')
    if kind not in RENDERED_TYPES:
        raise InvalidForm(
            f"the app adds records of these types: {', '.join(RENDERED_TYPES)} (got {kind[:40]!r})"
        )
    return sealable(resource, patient)


def upload_from_form(form: Mapping[str, str], patient: str, today: date) -> dict[str, Any]:
    """The resource in the form's chosen file, else in its text box."""
    del today  # an uploaded resource carries its own dates
    return resource_from_upload(form.get("file", "").strip() or form.get("resource", ""), patient)


Builder = Callable[[Mapping[str, str], str, date], dict[str, Any]]


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str
    """How it is typed: "select", "text", "date", "textarea" or "file"."""
    choices: tuple[Choice, ...] = ()
    required: bool = False


@dataclass(frozen=True)
class RecordForm:
    key: str
    title: str
    intro: str
    button: str
    fields: tuple[Field, ...]
    build: Builder
    multipart: bool = False
    """It has a file input (posted as multipart/form-data)."""


def _choices(values: tuple[str, ...]) -> tuple[Choice, ...]:
    return tuple(Choice(v, v.replace("-", " ")) for v in values)


def _code_field(label: str, choices: tuple[Choice, ...]) -> Field:
    return Field("code", label, "select", (*choices, Choice(OTHER, "Other (type its name)")))


RECORD_FORMS: dict[str, RecordForm] = {
    form.key: form
    for form in (
        RecordForm(
            "condition", "Add a condition", "A diagnosis or problem (SNOMED CT).",
            "Seal the condition",
            (
                _code_field("Condition", CONDITIONS),
                Field("text", "Name in words (required for “other”)", "text"),
                Field("status", "Clinical status", "select", _choices(CONDITION_STATUSES), True),
                Field("onset", "Onset date (optional)", "date"),
            ),
            condition_from_form,
        ),
        RecordForm(
            "allergy", "Add an allergy", "An allergy or intolerance to a substance.",
            "Seal the allergy",
            (
                _code_field("Substance", SUBSTANCES),
                Field("text", "Substance in words (required for “other”)", "text"),
                Field("criticality", "Criticality", "select", _choices(CRITICALITIES), True),
                Field("reaction", "Reaction (optional), e.g. hives", "text"),
            ),
            allergy_from_form,
        ),
        RecordForm(
            "medication", "Add a medication", "A medication the patient takes or took.",
            "Seal the medication",
            (
                _code_field("Medication", MEDICATIONS),
                Field("text", "Medication in words (required for “other”)", "text"),
                Field("dosage", "Dosage (optional), e.g. 500 mg twice a day", "text"),
                Field("status", "Status", "select", _choices(MEDICATION_STATUSES), True),
                Field("effective", "Taken since (optional)", "date"),
            ),
            medication_from_form,
        ),
        RecordForm(
            "upload", "Upload a FHIR resource",
            f"One FHIR R4 resource as JSON (at most {MAX_RECORD_BYTES // 1024} KiB) of a type "
            f"the app shows: {', '.join(RENDERED_TYPES)}. Its patient becomes this patient.",
            "Seal the resource",
            (
                Field("file", "A JSON file", "file"),
                Field("resource", "Or paste the JSON", "textarea"),
            ),
            upload_from_form,
            multipart=True,
        ),
    )
}  # fmt: skip
