from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from medchain.client._fhir import InvalidFhirResource, canonical_json, validate_resource
from medchain.types import MedchainError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
FIX = "fix the resource and try again"


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def invalid(data: Any) -> InvalidFhirResource:
    with pytest.raises(InvalidFhirResource) as info:
        validate_resource(data)
    return info.value


def test_the_expected_examples_exist() -> None:
    names = {path.name for path in EXAMPLE_FILES}
    assert {
        "patient.json",
        "observation-heart-rate.json",
        "condition.json",
        "bundle-encounter.json",
    } <= names


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_validate_from_bytes_text_and_mapping(path: Path) -> None:
    raw = path.read_bytes()
    from_bytes = validate_resource(raw)
    assert from_bytes == validate_resource(raw.decode("utf-8"))
    assert from_bytes == validate_resource(json.loads(raw))
    assert from_bytes["resourceType"] == json.loads(raw)["resourceType"]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_validation_is_idempotent_and_json_compatible(path: Path) -> None:
    once = validate_resource(path.read_bytes())
    assert validate_resource(once) == once
    assert json.loads(json.dumps(once)) == once


def test_result_is_normalised_as_the_model_serialises_it() -> None:
    obs = load("observation-heart-rate.json")
    obs["valueQuantity"]["value"] = 72.50
    a = validate_resource(obs)
    spaced = json.dumps(obs, indent=4)
    b = validate_resource(spaced)
    assert a == b
    assert a["valueQuantity"]["value"] == 72.5


def test_input_mapping_is_not_modified() -> None:
    patient = load("patient.json")
    before = copy.deepcopy(patient)
    validate_resource(patient)
    assert patient == before


def test_error_is_a_medchain_error_with_code() -> None:
    error = invalid(b"{")
    assert isinstance(error, MedchainError)
    assert error.code == "invalid_fhir"


@pytest.mark.parametrize("text", [b"{", "not json at all", b'{"resourceType": "Patient",}'])
def test_not_json(text: bytes | str) -> None:
    error = invalid(text)
    assert "not valid JSON" in error.message
    assert "line 1" in error.message
    assert FIX in error.message


def test_not_utf8() -> None:
    error = invalid(b'{"resourceType": "Patient", "gender": "\xff"}')
    assert "UTF-8" in error.message


def test_duplicate_keys_and_nan_are_refused() -> None:
    assert "appears twice" in invalid('{"resourceType": "Patient", "id": "a", "id": "b"}').message
    assert "NaN" in invalid('{"resourceType": "Observation", "valueInteger": NaN}').message


@pytest.mark.parametrize("text", ["[]", "42", '"Patient"', "null"])
def test_not_an_object(text: str) -> None:
    assert "JSON object" in invalid(text).message


def test_wrong_argument_type() -> None:
    assert "got int" in invalid(42).message


def test_missing_resource_type() -> None:
    patient = load("patient.json")
    del patient["resourceType"]
    error = invalid(patient)
    assert "resourceType" in error.message
    assert FIX in error.message
    assert 'no "resourceType"' in invalid({"resourceType": None}).message


@pytest.mark.parametrize(
    ("resource_type", "suggestion"),
    [("Obsrvation", "Observation"), ("patient", "Patient"), ("Spaceship", None)],
)
def test_unknown_resource_type_is_named(resource_type: str, suggestion: str | None) -> None:
    error = invalid({"resourceType": resource_type})
    assert f"unknown resourceType {resource_type!r}" in error.message
    assert error.resource_type == resource_type
    assert FIX in error.message
    if suggestion:
        assert f"did you mean {suggestion!r}" in error.message


@pytest.mark.parametrize("resource_type", ["Quantity", "HumanName", "Resource", "DomainResource"])
def test_datatypes_and_abstract_types_are_not_resources(resource_type: str) -> None:
    assert "unknown resourceType" in invalid({"resourceType": resource_type}).message


@pytest.mark.parametrize("resource_type", [5, ["Patient"], "__class__", ""])
def test_non_name_resource_type(resource_type: Any) -> None:
    assert "unknown resourceType" in invalid({"resourceType": resource_type}).message


def test_wrong_type_for_a_field_names_path_and_reason() -> None:
    patient = load("patient.json")
    patient["name"][0]["given"] = "Zoltan"  # must be an array
    patient["birthDate"] = "14/03/1961"  # must be YYYY-MM-DD
    error = invalid(patient)
    assert error.resource_type == "Patient"
    assert error.message.startswith("Patient is not valid FHIR R4: ")
    assert "name[0].given: Input should be a valid list" in error.problems
    assert any(p.startswith("birthDate: ") and "Date" in p for p in error.problems)
    assert FIX in error.message


def test_messages_do_not_echo_values() -> None:
    patient = load("patient.json")
    patient["birthDate"] = "Zoltan-secret"
    patient["gender"] = {"nested": "Quibbleworth-secret"}
    error = invalid(patient)
    assert "secret" not in error.message


def test_unknown_element_is_reported_with_a_hint() -> None:
    obs = load("observation-heart-rate.json")
    obs["valueQuantiy"] = obs.pop("valueQuantity")
    error = invalid(obs)
    assert "valueQuantiy: unknown element" in error.message


def test_missing_required_element() -> None:
    obs = load("observation-heart-rate.json")
    del obs["code"]
    assert "code: required element is missing" in invalid(obs).problems


def test_many_problems_are_summarised() -> None:
    patient: dict[str, Any] = {"resourceType": "Patient"}
    patient.update({f"bogus{i}": i for i in range(12)})
    error = invalid(patient)
    assert len(error.problems) == 12
    assert "(and 4 more)" in error.message


def test_nested_resource_errors_have_paths() -> None:
    bundle = load("bundle-encounter.json")
    bundle["entry"][0]["resource"]["birthDate"] = "yesterday"
    error = invalid(bundle)
    assert error.resource_type == "Bundle"
    assert any(p.startswith("entry[0].resource.birthDate: ") for p in error.problems)


def test_nested_unknown_or_missing_resource_type() -> None:
    bundle = load("bundle-encounter.json")
    bundle["entry"][0]["resource"] = {"resourceType": "Spaceship"}
    assert "unknown resourceType 'Spaceship'" in invalid(bundle).message
    bundle["entry"][0]["resource"] = {"id": "x"}
    assert "entry[0].resource: a nested resource needs a concrete resourceType" in (
        invalid(bundle).problems
    )
    bundle["entry"][0]["resource"] = {"resourceType": 7}
    assert "Bundle is not valid" in invalid(bundle).message


def test_contained_resources_are_validated() -> None:
    obs = load("observation-heart-rate.json")
    obs["contained"] = [{"resourceType": "Patient", "id": "p1", "gender": 3}]
    assert any(p.startswith("contained[0].gender") for p in invalid(obs).problems)


def test_canonical_json_is_sorted_compact_utf8() -> None:
    resource = {"resourceType": "Patient", "b": [1, {"z": 1, "a": "é"}], "a": None}
    assert canonical_json(resource) == (
        '{"a":null,"b":[1,{"a":"é","z":1}],"resourceType":"Patient"}'.encode()
    )


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_canonical_json_is_stable_across_spellings(path: Path) -> None:
    data = json.loads(path.read_bytes())
    shuffled = json.loads(json.dumps(data, indent=3, sort_keys=True))
    assert canonical_json(validate_resource(data)) == canonical_json(validate_resource(shuffled))
    assert json.loads(canonical_json(validate_resource(data))) == validate_resource(data)


def test_canonical_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(InvalidFhirResource):
        canonical_json({"value": float("nan")})
    with pytest.raises(InvalidFhirResource):
        canonical_json({"value": object()})
