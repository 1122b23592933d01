"""A research organisation's holdings (medchain.web._research): the copies patients
shared, counted by type and rendered, a page at a time; their export as FHIR NDJSON."""

from __future__ import annotations

import json
from typing import Any

from medchain.client import validate_resource
from medchain.web._research import export_ndjson, holdings
from tests.api.harness import RESEARCH
from tests.web.conftest import EXAMPLES, Ward


def heart_rate(value: int) -> dict[str, Any]:
    """The example heart rate, reading `value` beats a minute."""
    resource = dict(json.loads((EXAMPLES / "observation-heart-rate.json").read_text()))
    resource["valueQuantity"] = {**resource["valueQuantity"], "value": value}
    return resource


def _share(ward: Ward, count: int) -> list[bytes]:
    """The doctor writes a condition and `count - 1` heart rates; the patient shares each
    with the research institute."""
    patient = ward.client(ward.patient)
    ids = [ward.doctor_writes()]
    ids += [ward.doctor_writes(heart_rate(60 + n)) for n in range(count - 1)]
    for record_id in ids:
        patient.research_grant(record_id, RESEARCH.account.address)
    return ids


def test_counts_by_type_and_renders_a_page_newest_first(ward: Ward) -> None:
    ids = _share(ward, 4)
    lab = ward.client(RESEARCH.account)
    first = holdings(lab, 1, page_size=3)
    second = holdings(lab, 2, page_size=3)
    assert first.counts == (("Condition", 1), ("Observation", 3))
    assert (first.total, first.pages) == (4, 2)
    shown = [c.record_id for c in first.copies + second.copies]
    assert shown == [record_id.hex() for record_id in reversed(ids)]
    assert second.copies[0].view.title == "Type 2 diabetes mellitus"
    assert first.copies[0].view.date == "2024"  # de-identified: the year only
    assert ("Value", "62 beats/minute") in first.copies[0].view.lines


def test_nothing_shared_is_an_empty_page(ward: Ward) -> None:
    found = holdings(ward.client(RESEARCH.account), 5)
    assert (found.counts, found.copies, found.page, found.total) == ((), (), 1, 0)


def test_the_export_is_one_valid_deidentified_resource_a_line(ward: Ward) -> None:
    ids = _share(ward, 2)
    lines = export_ndjson(ward.client(RESEARCH.account)).splitlines()
    resources = [json.loads(line) for line in lines]
    assert sorted(r["id"] for r in resources) == sorted(i.hex() for i in ids)
    assert [r["resourceType"] for r in resources] == ["Condition", "Observation"]
    for resource in resources:
        assert validate_resource(resource) == resource
        codes = {label["code"] for label in resource["meta"]["security"]}
        assert "PSEUDED" in codes
    assert ward.patient.address.hex() not in "".join(lines)
