"""The everyday record forms and the upload: a filled-in form becomes a valid FHIR R4
resource about the patient; a wrong field is refused with a message naming it, before
anything is sealed."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B.allergyintolerance import AllergyIntolerance
from fhir.resources.R4B.condition import Condition
from fhir.resources.R4B.medicationstatement import MedicationStatement
from hypothesis import given
from hypothesis import strategies as st

from medchain.web import InvalidForm, render
from medchain.web._clinician import MAX_RECORD_BYTES
from medchain.web._record_forms import (
    CONDITIONS,
    MEDICATIONS,
    RECORD_FORMS,
    SUBSTANCES,
    allergy_from_form,
    condition_from_form,
    medication_from_form,
    resource_from_upload,
    upload_from_form,
)

TODAY = date(2026, 3, 1)
PATIENT = "mc1patientaddress"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_a_listed_condition_becomes_a_valid_condition_about_the_patient() -> None:
    form = {"code": "44054006", "text": "", "status": "active", "onset": "2019-06-21"}
    resource = condition_from_form(form, PATIENT, TODAY)
    model = Condition.model_validate(resource)
    assert model.subject.reference == f"Patient/{PATIENT}"
    assert resource["code"]["coding"] == [
        {
            "system": "http://snomed.info/sct",
            "code": "44054006",
            "display": "Type 2 diabetes mellitus",
        }
    ]
    assert resource["clinicalStatus"]["coding"][0]["code"] == "active"
    assert resource["onsetDateTime"] == "2019-06-21"
    view = render(resource)
    assert (view.title, view.date) == ("Type 2 diabetes mellitus", "2019-06-21")


def test_another_condition_is_named_by_its_text_alone() -> None:
    form = {"code": "other", "text": " Gout ", "status": "remission", "onset": ""}
    resource = condition_from_form(form, PATIENT, TODAY)
    Condition.model_validate(resource)
    assert resource["code"] == {"text": "Gout"}
    assert "onsetDateTime" not in resource


def test_an_allergy_becomes_a_valid_allergy_intolerance() -> None:
    form = {"code": "764146007", "criticality": "high", "reaction": "Hives"}
    resource = allergy_from_form(form, PATIENT, TODAY)
    model = AllergyIntolerance.model_validate(resource)
    assert model.patient.reference == f"Patient/{PATIENT}"
    assert resource["reaction"] == [{"manifestation": [{"text": "Hives"}]}]
    assert resource["recordedDate"] == "2026-03-01"
    assert dict(render(resource).lines)["Reactions"] == "Hives"


def test_a_medication_becomes_a_valid_medication_statement() -> None:
    form = {"code": "372567009", "dosage": "500 mg twice a day", "status": "active"}
    resource = medication_from_form({**form, "effective": "2026-01-05"}, PATIENT, TODAY)
    model = MedicationStatement.model_validate(resource)
    assert model.subject.reference == f"Patient/{PATIENT}"
    assert resource["dosage"] == [{"text": "500 mg twice a day"}]
    view = render(resource)
    assert (view.title, view.date) == ("Metformin", "2026-01-05")
    assert dict(view.lines)["Dosage"] == "500 mg twice a day"


def test_every_listed_code_makes_a_valid_resource() -> None:
    for choice in CONDITIONS:
        Condition.model_validate(
            condition_from_form({"code": choice.value, "status": "active"}, PATIENT, TODAY)
        )
    for choice in SUBSTANCES:
        AllergyIntolerance.model_validate(
            allergy_from_form({"code": choice.value, "criticality": "low"}, PATIENT, TODAY)
        )
    for choice in MEDICATIONS:
        MedicationStatement.model_validate(
            medication_from_form({"code": choice.value, "status": "completed"}, PATIENT, TODAY)
        )


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"code": "44054006", "status": "active", "onset": "21/06/2019"}, "is not a date"),
        ({"code": "44054006", "status": "active", "onset": "2026-03-02"}, "in the future"),
        ({"code": "44054006", "status": "cured"}, "'cured' is not one of"),
        ({"code": "other", "text": " ", "status": "active"}, "type its name"),
        ({"code": "12345", "status": "active"}, "choose the condition from the list"),
    ],
)
def test_a_wrong_condition_field_is_refused(form: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidForm, match=says):
        condition_from_form(form, PATIENT, TODAY)


def test_a_wrong_allergy_or_medication_field_is_refused() -> None:
    with pytest.raises(InvalidForm, match="criticality 'severe' is not one of"):
        allergy_from_form({"code": "764146007", "criticality": "severe"}, PATIENT, TODAY)
    with pytest.raises(InvalidForm, match="status 'taking' is not one of"):
        medication_from_form({"code": "372567009", "status": "taking"}, PATIENT, TODAY)
    with pytest.raises(InvalidForm, match="date taken 'yesterday' is not a date"):
        form = {"code": "372567009", "status": "active", "effective": "yesterday"}
        medication_from_form(form, PATIENT, TODAY)


def test_an_upload_is_validated_and_made_about_the_patient() -> None:
    text = (EXAMPLES / "condition.json").read_text()
    resource = resource_from_upload(text, PATIENT)
    Condition.model_validate(resource)
    assert resource["subject"] == {"reference": f"Patient/{PATIENT}"}
    assert resource["code"]["text"] == "Type 2 diabetes mellitus"


def test_a_chosen_file_wins_over_the_text_box() -> None:
    allergy = allergy_from_form({"code": "387458008", "criticality": "low"}, PATIENT, TODAY)
    form = {"file": json.dumps(allergy), "resource": "not used"}
    assert upload_from_form(form, PATIENT, TODAY)["code"]["text"] == "Aspirin"
    assert upload_from_form({"file": "", "resource": json.dumps(allergy)}, PATIENT, TODAY)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "paste a FHIR resource"),
        ('{"resourceType": ', "that is not JSON"),
        ("[1, 2]", "not a FHIR resource"),
        ('{"name": "Jane"}', 'no "resourceType"'),
        ('{"resourceType": "Patient"}', "the app adds records of these types"),
        ('{"resourceType": "Condition", "onsetDateTime": "soon"}', "not valid FHIR R4"),
        (json.dumps({"resourceType": "Condition", "note": "x" * MAX_RECORD_BYTES}), "at most"),
    ],
)
def test_an_upload_that_is_not_a_record_the_app_adds_is_refused(text: str, says: str) -> None:
    with pytest.raises(InvalidForm, match=says):
        resource_from_upload(text, PATIENT)


_FIELDS = st.dictionaries(
    st.sampled_from(["code", "text", "status", "onset", "criticality", "reaction", "dosage"]),
    st.one_of(st.text(max_size=30), st.sampled_from(["active", "44054006", "other", "high"])),
)


@given(form=_FIELDS, kind=st.sampled_from(["condition", "allergy", "medication"]))
def test_any_form_makes_a_valid_resource_or_says_what_is_wrong(
    form: dict[str, str], kind: str
) -> None:
    try:
        resource: dict[str, Any] = RECORD_FORMS[kind].build(form, PATIENT, TODAY)
    except InvalidForm as exc:
        assert exc.message
    else:
        assert resource["resourceType"] in {
            "Condition",
            "AllergyIntolerance",
            "MedicationStatement",
        }
