"""The vital-signs form: a filled-in form becomes a valid FHIR Observation; a wrong
field is refused with a message naming it, before anything is sealed."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from medchain.client import validate_resource
from medchain.web import VITAL_SIGNS, InvalidForm, observation_from_form

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_a_heart_rate_becomes_a_valid_vital_signs_observation() -> None:
    resource = observation_from_form({"kind": "heart-rate", "value": "72", "when": ""}, NOW)
    validate_resource(resource)
    assert resource["code"]["coding"][0]["code"] == "8867-4"
    assert resource["valueQuantity"] == {
        "value": 72,
        "unit": "/min",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert resource["effectiveDateTime"] == "2026-03-01T12:00:00Z"
    assert resource["category"][0]["coding"][0]["code"] == "vital-signs"


def test_a_decimal_value_and_a_past_time() -> None:
    resource = observation_from_form(
        {"kind": "body-temp", "value": " 37.4 ", "when": "2026-02-28T08:30"}, NOW
    )
    validate_resource(resource)
    assert resource["valueQuantity"]["value"] == 37.4
    assert resource["effectiveDateTime"] == "2026-02-28T08:30:00Z"


def test_every_offered_sign_makes_a_valid_resource() -> None:
    for sign in VITAL_SIGNS:
        validate_resource(observation_from_form({"kind": sign.key, "value": str(sign.high)}, NOW))


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"kind": "mood", "value": "3"}, "choose which vital sign"),
        ({"kind": "heart-rate", "value": "fast"}, "not a number"),
        ({"kind": "heart-rate", "value": "NaN"}, "between 20 and 300"),
        ({"kind": "heart-rate", "value": "720"}, "between 20 and 300"),
        ({"kind": "spo2", "value": "-1"}, "between 40 and 100"),
        ({"kind": "heart-rate", "value": "70", "when": "yesterday"}, "not a date"),
        ({"kind": "heart-rate", "value": "70", "when": "2026-03-02T00:00"}, "future"),
    ],
)
def test_a_wrong_field_is_refused_with_what_to_fix(form: dict[str, str], says: str) -> None:
    with pytest.raises(InvalidForm, match=says):
        observation_from_form(form, NOW)
