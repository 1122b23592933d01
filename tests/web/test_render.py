"""Each common FHIR type rendered for people: the words and numbers a reader needs,
never the JSON."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from medchain.web import render

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _coded(text: str) -> dict[str, Any]:
    return {"coding": [{"system": "http://snomed.info/sct", "code": "1", "display": text}]}


def test_an_observation_shows_value_unit_range_and_date() -> None:
    view = render(json.loads((EXAMPLES / "observation-heart-rate.json").read_text()))
    lines = dict(view.lines)
    assert (view.kind, view.title) == ("Observation", "Heart rate")
    assert view.date == "2024-02-14T09:05:00-08:00"
    assert lines["Value"].startswith("72 ")
    assert lines["Status"] == "final"


def test_an_observation_range_and_blood_pressure_components() -> None:
    view = render(
        {
            "resourceType": "Observation",
            "code": {"text": "Blood pressure"},
            "effectiveDateTime": "2026-01-02",
            "component": [
                {"code": _coded("Systolic"), "valueQuantity": {"value": 120, "unit": "mmHg"}},
                {"code": _coded("Diastolic"), "valueQuantity": {"value": 80, "unit": "mmHg"}},
            ],
            "referenceRange": [{"low": {"value": 90, "unit": "mmHg"}, "high": {"value": 140}}],
        }
    )
    lines = dict(view.lines)
    assert lines["Systolic"] == "120 mmHg"
    assert lines["Diastolic"] == "80 mmHg"
    assert lines["Reference range"] == "90 mmHg to 140"
    assert "Value" not in lines


def test_a_condition_shows_its_name_status_and_onset() -> None:
    view = render(json.loads((EXAMPLES / "condition.json").read_text()))
    assert (view.kind, view.title) == ("Condition", "Type 2 diabetes mellitus")
    assert dict(view.lines)["Clinical status"] == "Active"
    assert view.date


def test_an_allergy_shows_criticality_and_reactions() -> None:
    view = render(
        {
            "resourceType": "AllergyIntolerance",
            "code": _coded("Penicillin"),
            "criticality": "high",
            "reaction": [{"manifestation": [_coded("Hives"), _coded("Wheeze")]}],
            "recordedDate": "2025-05-01",
        }
    )
    assert view.title == "Penicillin"
    assert dict(view.lines) == {"Criticality": "high", "Reactions": "Hives, Wheeze"}
    assert view.date == "2025-05-01"


def test_medications_show_the_drug_and_dosage() -> None:
    statement = render(
        {
            "resourceType": "MedicationStatement",
            "status": "active",
            "medicationCodeableConcept": {"text": "Metformin 500 mg"},
            "dosage": [{"text": "twice a day"}],
            "effectivePeriod": {"start": "2025-01-01"},
        }
    )
    request = render(
        {
            "resourceType": "MedicationRequest",
            "intent": "order",
            "medicationCodeableConcept": _coded("Amoxicillin"),
            "dosageInstruction": [{"text": "500 mg three times a day"}],
            "authoredOn": "2025-02-03",
        }
    )
    assert (statement.title, statement.date) == ("Metformin 500 mg", "2025-01-01")
    assert dict(statement.lines)["Dosage"] == "twice a day"
    assert request.kind == "Medication prescribed"
    assert dict(request.lines)["Dosage"] == "500 mg three times a day"
    assert request.date == "2025-02-03"


def test_immunization_report_and_procedure() -> None:
    shot = render(
        {
            "resourceType": "Immunization",
            "vaccineCode": {"text": "Influenza"},
            "occurrenceDateTime": "2025-10-01",
            "lotNumber": "A12",
        }
    )
    report = render(
        {
            "resourceType": "DiagnosticReport",
            "code": {"text": "Full blood count"},
            "conclusion": "Normal",
            "result": [{"reference": "Observation/1"}, {"reference": "Observation/2"}],
        }
    )
    procedure = render(
        {
            "resourceType": "Procedure",
            "code": _coded("Appendectomy"),
            "performedPeriod": {"start": "2020-03-04"},
            "outcome": {"text": "Successful"},
        }
    )
    assert (shot.title, shot.date, dict(shot.lines)["Lot"]) == ("Influenza", "2025-10-01", "A12")
    assert dict(report.lines)["Conclusion"] == "Normal"
    assert dict(report.lines)["Results"] == "2"
    assert (procedure.title, procedure.date) == ("Appendectomy", "2020-03-04")
    assert dict(procedure.lines)["Outcome"] == "Successful"


def test_another_type_shows_its_type_and_code() -> None:
    view = render({"resourceType": "CarePlan", "status": "active"})
    assert (view.kind, view.title, view.lines) == ("CarePlan", "CarePlan", ())


def test_malformed_fields_are_left_out_not_fatal() -> None:
    view = render({"resourceType": "Observation", "code": "not a concept", "valueQuantity": 5})
    assert view.title == "Observation"
    assert view.lines == ()
