"""OperationOutcome bodies: statuses, codes, and the element a validation failure names."""

from __future__ import annotations

import pytest

from medchain.client import InvalidFhirResource, validate_resource
from medchain.fhir._outcome import forbidden, gone, invalid_resource, not_found


@pytest.mark.parametrize(
    ("resource", "element"),
    [
        ({"resourceType": "Observation", "code": {"text": "x"}}, "Observation.status"),
        (
            {"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "bogus": 1},
            "Observation.bogus",
        ),
    ],
)
def test_invalid_resource_names_the_element_in_expression(
    resource: dict[str, object], element: str
) -> None:
    with pytest.raises(InvalidFhirResource) as caught:
        validate_resource(resource)
    error = invalid_resource(caught.value)
    assert error.status == 400
    outcome = validate_resource(error.outcome())
    assert outcome["issue"][0]["expression"] == [element]
    assert outcome["issue"][0]["code"] == "invalid"


def test_unparsable_resource_is_one_issue_without_expression() -> None:
    with pytest.raises(InvalidFhirResource) as caught:
        validate_resource(b"{not json")
    outcome = invalid_resource(caught.value).outcome()
    assert len(outcome["issue"]) == 1
    assert "expression" not in outcome["issue"][0]
    assert "not valid JSON" in outcome["issue"][0]["diagnostics"]


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (not_found("Observation", "ab"), 404, "not-found"),
        (forbidden("Observation/ab"), 403, "forbidden"),
        (gone("Observation", "ab"), 410, "deleted"),
    ],
)
def test_refusals_carry_their_status_and_code(error: object, status: int, code: str) -> None:
    from medchain.fhir._outcome import FhirError

    assert isinstance(error, FhirError)
    assert error.status == status
    outcome = validate_resource(error.outcome())
    assert outcome["issue"][0]["code"] == code
