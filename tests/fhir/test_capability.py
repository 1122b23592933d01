"""The CapabilityStatement says what the server routes and searches, no more."""

from __future__ import annotations

import pytest

from medchain.client import validate_resource
from medchain.fhir._capability import (
    INTERACTIONS,
    Interaction,
    capability_statement,
    supports,
)
from medchain.fhir._search import parse_search


def _statement(bulk: bool = False) -> dict[str, object]:
    return validate_resource(capability_statement("http://127.0.0.1:8700", "2026-01-01", bulk))


def _resources(bulk: bool = False) -> dict[str, dict[str, object]]:
    rest = _statement(bulk)["rest"]
    assert isinstance(rest, list)
    return {r["type"]: r for r in rest[0]["resource"]}


def test_statement_validates_and_lists_every_served_type() -> None:
    assert set(_resources()) == set(INTERACTIONS)


def test_records_are_versioned_and_writable_profile_and_consents_read_only() -> None:
    resources = _resources()
    codes = {i["code"] for i in resources["Observation"]["interaction"]}  # type: ignore[attr-defined]
    assert codes == {i.value for i in Interaction}
    assert resources["Observation"]["versioning"] == "versioned"
    patient = {i["code"] for i in resources["Patient"]["interaction"]}  # type: ignore[attr-defined]
    assert patient == {"read", "search-type"}
    assert not supports("Patient", Interaction.CREATE)
    assert not supports("Basic", Interaction.READ)


@pytest.mark.parametrize("resource_type", sorted(INTERACTIONS))
def test_every_listed_search_parameter_is_accepted_strictly(resource_type: str) -> None:
    params = _resources()[resource_type]["searchParam"]
    assert isinstance(params, list)
    for param in params:
        value = {"reference": "Patient/x", "date": "ge2024", "token": "x"}[param["type"]]
        parse_search(resource_type, [(param["name"], value)], strict=True)


def test_operations_follow_what_is_wired() -> None:
    without = _resources()["Patient"]["operation"]
    assert [o["name"] for o in without] == ["everything"]  # type: ignore[attr-defined]
    assert "operation" not in _statement()["rest"][0]  # type: ignore[index]
    with_bulk = _resources(bulk=True)["Patient"]["operation"]
    assert [o["name"] for o in with_bulk] == ["everything", "export"]  # type: ignore[attr-defined]
