"""Research organisations' de-identified copies as FHIR resources (medchain.fhir._research)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from medchain.app import ResearchEntry, Role
from medchain.client import InvalidFhirResource, MedchainClient, ResearchItem, validate_resource
from medchain.crypto import AccountKeys, format_address
from medchain.fhir import research_resource
from tests.api.harness import enlist, institution, make_chain

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PSEUDED = ("http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "PSEUDED")


def example(name: str) -> dict[str, Any]:
    return dict(json.loads((EXAMPLES / name).read_text()))


@pytest.fixture(scope="module")
def shared() -> tuple[MedchainClient, MedchainClient, dict[bytes, str]]:
    """A patient who gave a research institution copies of three records."""
    chain = make_chain()
    patient = enlist(MedchainClient(AccountKeys.generate(), chain), Role.PATIENT, "Jane Roe")
    lab = institution(chain)
    names = {}
    for name in ("observation-heart-rate.json", "condition.json", "patient.json"):
        resource = example(name)
        if "subject" in resource:
            resource["subject"] = {"reference": f"Patient/{format_address(patient.address)}"}
        record_id = patient.put_record(patient.address, resource)
        patient.research_grant(record_id, lab.address)
        names[record_id] = name
    return patient, lab, names


def test_each_copy_is_valid_fhir_under_its_record_id_and_version(
    shared: tuple[MedchainClient, MedchainClient, dict[bytes, str]],
) -> None:
    _, lab, names = shared
    items = lab.research_data()
    assert {item.entry.record_id for item in items} == set(names)
    for item in items:
        resource = research_resource(item)
        assert validate_resource(resource) == resource
        assert resource["id"] == item.entry.record_id.hex()
        assert resource["meta"]["versionId"] == "1"
        assert resource["resourceType"] == example(names[item.entry.record_id])["resourceType"]
        labels = {(s["system"], s["code"]) for s in resource["meta"]["security"]}
        assert PSEUDED in labels


def test_no_copy_names_or_references_the_patient(
    shared: tuple[MedchainClient, MedchainClient, dict[bytes, str]],
) -> None:
    patient, lab, _ = shared
    address = format_address(patient.address)
    for item in lab.research_data():
        text = json.dumps(research_resource(item))
        assert address not in text and "Jane" not in text and "Roe" not in text


def test_the_item_is_left_as_it_was_and_last_updated_is_optional(
    shared: tuple[MedchainClient, MedchainClient, dict[bytes, str]],
) -> None:
    _, lab, _ = shared
    item = lab.research_data()[0]
    before = copy.deepcopy(item.resource)
    assert "lastUpdated" not in research_resource(item)["meta"]
    resource = research_resource(item, last_updated_ms=1_714_608_000_005)
    assert resource["meta"]["lastUpdated"] == "2024-05-02T00:00:00.005Z"
    assert item.resource == before


def test_a_copy_of_a_later_version_says_which() -> None:
    chain = make_chain()
    patient = enlist(MedchainClient(AccountKeys.generate(), chain), Role.PATIENT, "Jane Roe")
    lab = institution(chain)
    resource = example("condition.json")
    record_id = patient.put_record(patient.address, resource)
    resource["clinicalStatus"]["coding"][0]["code"] = "resolved"
    patient.add_version(record_id, resource)
    patient.research_grant(record_id, lab.address)
    (item,) = lab.research_data()
    converted = research_resource(item)
    assert converted["meta"]["versionId"] == "2"
    assert converted["clinicalStatus"]["coding"][0]["code"] == "resolved"


def test_a_copy_that_is_not_fhir_is_refused() -> None:
    entry = ResearchEntry(b"\x01" * 16, b"\x02" * 20, b"\x03" * 20, 1, "cid", b"\x00" * 32, (), 1)
    with pytest.raises(InvalidFhirResource, match="status"):
        research_resource(ResearchItem(entry, {"resourceType": "Observation", "status": 7}))
