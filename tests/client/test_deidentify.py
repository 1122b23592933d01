from __future__ import annotations

import copy
import hashlib
import hmac
import importlib
import inspect
import json
import pkgutil
import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import R4B
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.client._deidentify import (
    INSTANT_KEYS,
    INSTANT_PATHS,
    SECURITY_LABEL,
    InvalidPseudonymKey,
    deidentify,
)
from medchain.client._fhir import InvalidFhirResource, validate_resource

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.glob("*.json"))
KEY = b"research-grant-key-0001-abcdefgh"
OTHER_KEY = b"research-grant-key-0002-ijklmnop"
YEAR = 2025
FULL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MASKED = {
    "extension": [
        {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}
    ]
}


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return data


def deid(resource: dict[str, Any], key: bytes = KEY) -> dict[str, Any]:
    return deidentify(resource, key, reference_year=YEAR)


def pseudonym(original: str, key: bytes = KEY) -> str:
    return hmac.new(key, original.encode(), hashlib.sha256).hexdigest()[:16]


def walk(value: Any) -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """(key, value, parent) for every member of every object in a JSON value."""
    if isinstance(value, list):
        for item in value:
            yield from walk(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key, item, value
            yield from walk(item)


def resources(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, dict) and "resourceType" in value:
        yield value
    for _, item, _ in walk(value):
        if isinstance(item, dict) and "resourceType" in item:
            yield item


def secrets(resource: dict[str, Any]) -> set[str]:
    """Identifying strings in an input, found by walking it (never hard-coded)."""
    found: set[str] = set()
    for key, value, parent in walk(resource):
        if key == "name" and isinstance(value, list):
            for name in value:
                found.update(
                    [*name.get("given", []), *([name["family"]] if "family" in name else [])]
                )
        elif key == "name" and isinstance(value, dict):
            found.update([*value.get("given", []), value.get("family", "")])
        elif key in ("identifier", "telecom") and isinstance(value, list):
            found.update(item["value"] for item in value if "value" in item)
        elif key == "address" and isinstance(value, list):
            for address in value:
                found.update(address.get("line", []))
                found.update(address[k] for k in ("city", "district", "postalCode") if k in address)
        elif key in ("display", "authorString") and "code" not in parent and "system" not in parent:
            found.add(value)
            found.update(w for w in re.findall(r"[A-Za-z]{3,}", value) if w not in ("Nurse",))
        if isinstance(value, str):
            found.update(FULL_DATE.findall(value))
    found.discard("")
    return found


# -- every example -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def patient_secrets() -> set[str]:
    return secrets(load("patient.json"))


def test_secrets_helper_finds_what_it_should(patient_secrets: set[str]) -> None:
    patient = load("patient.json")
    assert patient["name"][0]["family"] in patient_secrets
    assert patient["identifier"][0]["value"] in patient_secrets
    assert patient["birthDate"] in patient_secrets
    assert patient["address"][0]["postalCode"] in patient_secrets
    assert len(patient_secrets) > 15


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_leak_nothing_identifying(path: Path, patient_secrets: set[str]) -> None:
    source = load(path.name)
    text = json.dumps(deid(source))
    # The patient's details must not surface even where another record mentions them.
    leaked = {s for s in secrets(source) | patient_secrets if s in text}
    assert not leaked, text
    assert not FULL_DATE.search(text.replace("-01-01T00:00:00Z", "")), text


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_examples_stay_valid_fhir(path: Path) -> None:
    out = deid(load(path.name))
    assert validate_resource(out) == validate_resource(validate_resource(out))
    assert out["resourceType"] == load(path.name)["resourceType"]


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_input_is_not_modified(path: Path) -> None:
    source = load(path.name)
    before = copy.deepcopy(source)
    deid(source)
    assert source == before


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_every_resource_is_labelled_and_meta_is_trimmed(path: Path) -> None:
    out = deid(load(path.name))
    for resource in resources(out):
        meta = resource["meta"]
        assert dict(SECURITY_LABEL) in meta["security"]
        assert meta["security"].count(dict(SECURITY_LABEL)) == 1
        assert not {"versionId", "lastUpdated", "source"} & set(meta)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: p.name)
def test_deterministic_for_one_key(path: Path) -> None:
    assert deid(load(path.name)) == deid(load(path.name))


def test_clinical_content_survives() -> None:
    obs = deid(load("observation-heart-rate.json"))
    assert obs["code"]["coding"][0] == {
        "system": "http://loinc.org",
        "code": "8867-4",
        "display": "Heart rate",
    }
    assert obs["valueQuantity"]["value"] == 72
    assert obs["valueQuantity"]["code"] == "/min"
    assert obs["category"][0]["coding"][0]["code"] == "vital-signs"
    patient = deid(load("patient.json"))
    assert patient["gender"] == "male"
    assert patient["communication"][0]["language"]["coding"][0]["code"] == "en-US"


def test_dates_keep_the_year_only() -> None:
    source = load("observation-heart-rate.json")
    obs = deid(source)
    assert obs["effectiveDateTime"] == source["effectiveDateTime"][:4]
    assert obs["note"][0]["time"] == source["note"][0]["time"][:4]
    # `issued` is an instant, which cannot hold a bare year: the year's first instant.
    assert obs["issued"] == f"{source['issued'][:4]}-01-01T00:00:00Z"
    patient = deid(load("patient.json"))
    assert patient["birthDate"] == load("patient.json")["birthDate"][:4]
    condition = deid(load("condition.json"))
    assert condition["evidence"][0]["code"][0]["text"].endswith(" on 2019")


def test_identifying_elements_are_removed() -> None:
    patient = deid(load("patient.json"))
    for key in ("name", "identifier", "telecom", "address", "contact", "text", "photo", "link"):
        assert key not in patient
    condition = deid(load("condition.json"))
    assert "authorString" not in condition["note"][0]
    assert condition["note"][0]["text"]  # Annotation.text is required: scrubbed, not removed
    for key, _, parent in walk(condition):
        assert key != "display" or "code" in parent or "system" in parent


# -- pseudonyms --------------------------------------------------------------------------------


def test_ids_and_references_use_the_keyed_pseudonym() -> None:
    patient = deid(load("patient.json"))
    obs = deid(load("observation-heart-rate.json"))
    condition = deid(load("condition.json"))
    assert patient["id"] == pseudonym("Patient/pat-0001")
    assert obs["subject"]["reference"] == f"Patient/{patient['id']}"
    assert condition["subject"]["reference"] == f"Patient/{patient['id']}"
    practitioner = f"Practitioner/{pseudonym('Practitioner/prac-0042')}"
    assert patient["generalPractitioner"][0]["reference"] == practitioner
    assert obs["performer"][0]["reference"] == practitioner
    assert condition["recorder"]["reference"] == practitioner


def test_another_key_gives_unlinkable_pseudonyms() -> None:
    def ids(out: dict[str, Any]) -> set[str]:
        found = {r["id"] for r in resources(out)}
        for key, value, _ in walk(out):
            if key in ("reference", "fullUrl"):
                found.add(value.rsplit("/", 1)[-1].removeprefix("urn:uuid:"))
        return found

    for path in EXAMPLE_FILES:
        one, two = ids(deid(load(path.name))), ids(deid(load(path.name), OTHER_KEY))
        assert one and two and not one & two


def test_bundle_references_still_resolve() -> None:
    source = load("bundle-encounter.json")
    out = deid(source)
    urls = [entry["fullUrl"] for entry in out["entry"]]
    assert len(set(urls)) == len(urls) == len(source["entry"])
    assert all(re.fullmatch(r"urn:uuid:[0-9a-f-]{36}", url) for url in urls)
    for entry in out["entry"]:
        for key, value, _ in walk(entry["resource"]):
            if key == "reference" and value.startswith("urn:uuid:"):
                assert value in urls
    originals = {e["fullUrl"] for e in source["entry"]}
    assert not originals & set(urls)


def test_reference_shapes() -> None:
    obs = load("observation-heart-rate.json")
    obs["subject"] = {"reference": "https://ehr.example/fhir/Patient/pat-0001/_history/3"}
    obs["performer"] = [{"reference": "#prac"}, {"reference": "urn:oid:1.2.3.4"}]
    obs["contained"] = [
        {
            "resourceType": "Practitioner",
            "id": "prac",
            "name": [{"family": "Kettleby", "given": ["Bartholomew"]}],
        }
    ]
    out = deid(obs)
    assert out["subject"]["reference"] == (
        f"https://pseudonym.invalid/fhir/Patient/{pseudonym('Patient/pat-0001')}"
    )
    local = out["performer"][0]["reference"]
    assert local.startswith("#") and local[1:] == out["contained"][0]["id"]
    assert out["performer"][1]["reference"].startswith("urn:uuid:")
    assert "name" not in out["contained"][0]
    assert "Kettleby" not in json.dumps(out)
    validate_resource(out)


def test_short_key_is_refused() -> None:
    with pytest.raises(InvalidPseudonymKey, match="at least 16"):
        deidentify(load("patient.json"), b"short")


def test_invalid_input_is_refused() -> None:
    with pytest.raises(InvalidFhirResource):
        deidentify({"resourceType": "Patient", "gender": 3}, KEY)


# -- ages, birth years, required elements, extensions -------------------------------------------


def condition_with(**extra: Any) -> dict[str, Any]:
    condition = load("condition.json")
    del condition["onsetDateTime"]
    condition.update(extra)
    return condition


@pytest.mark.parametrize(
    ("age", "capped"),
    [
        ({"value": 93, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}, True),
        (
            {"value": 1200, "unit": "months", "system": "http://unitsofmeasure.org", "code": "mo"},
            True,
        ),
        ({"value": 89, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}, False),
        ({"value": 40, "unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}, False),
    ],
)
def test_ages_of_90_or_more_become_one_category(age: dict[str, Any], capped: bool) -> None:
    out = deid(condition_with(onsetAge=age))
    if capped:
        assert out["onsetAge"]["value"] == 90 and out["onsetAge"]["comparator"] == ">="
        assert out["onsetAge"]["code"] == "a"
    else:
        assert out["onsetAge"] == age
    validate_resource(out)


def test_age_ranges_are_capped_but_other_ranges_are_not() -> None:
    years = {"unit": "years", "system": "http://unitsofmeasure.org", "code": "a"}
    out = deid(
        condition_with(onsetRange={"low": {"value": 92, **years}, "high": {"value": 97, **years}})
    )
    assert out["onsetRange"]["low"]["value"] == out["onsetRange"]["high"]["value"] == 90
    validate_resource(out)
    obs = load("observation-heart-rate.json")
    obs["referenceRange"] = [{"low": {"value": 60}, "high": {"value": 100}}]
    assert deid(obs)["referenceRange"] == obs["referenceRange"]


@pytest.mark.parametrize(
    ("birth", "deceased", "expected"),
    [
        ("1961-03-14", None, "1961"),
        ("1925-05-01", None, str(YEAR - 90)),  # would show an age of 99
        ("1890-02-02", "1985-07-07", "1895"),  # 95 at death
        ("1900-02-02", "1985-07-07", "1900"),  # 85 at death
    ],
)
def test_birth_years_revealing_90_plus_are_top_coded(
    birth: str, deceased: str | None, expected: str
) -> None:
    patient = load("patient.json")
    patient["birthDate"] = birth
    if deceased:
        patient["deceasedDateTime"] = deceased
    out = deid(patient)
    assert out["birthDate"] == expected
    if deceased:
        assert out["deceasedDateTime"] == deceased[:4]


def test_reference_with_only_a_display_is_masked_where_required() -> None:
    condition = load("condition.json")
    condition["subject"] = {"display": "Zoltan Quibbleworth"}  # Condition.subject is 1..1
    out = deid(condition)
    assert out["subject"] == MASKED
    validate_resource(out)


def test_identifying_extensions_are_removed_and_others_scrubbed() -> None:
    patient = load("patient.json")
    patient["extension"] = [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-mothersMaidenName",
            "valueString": "Pemberton-Slye",
        },
        {
            "url": "http://hl7.org/fhir/StructureDefinition/patient-birthPlace",
            "valueAddress": {"city": "Lower Wobbleton", "country": "GB"},
        },
        {"url": "https://example.org/ext/emergency", "valueHumanName": {"family": "Frobisher"}},
        {"url": "https://example.org/ext/nickname", "valueString": "Zoltan the Great"},
        {"url": "https://example.org/ext/smoker", "valueBoolean": False},
    ]
    out = deid(patient)
    text = json.dumps(out)
    for secret in ("Pemberton", "Wobbleton", "Frobisher", "Zoltan"):
        assert secret not in text
    assert [e["url"] for e in out["extension"]] == [
        "https://example.org/ext/nickname",
        "https://example.org/ext/smoker",
    ]
    validate_resource(out)


def test_free_text_is_scrubbed_of_names_contacts_and_dates() -> None:
    source = load("bundle-encounter.json")
    obs = source["entry"][2]["resource"]
    obs["note"] = [
        {
            "text": "Ottoline (MRN RC-551207, tel +1-555-0199, otto@mail.example) seen on "
            "2024-02-14 at 18 Quillfeather Lane, Brackenridge Falls; next visit 03/15/2024."
        }
    ]
    out = deid(source)
    note = out["entry"][2]["resource"]["note"][0]["text"]
    for secret in ("Ottoline", "RC-551207", "555-0199", "otto@", "02-14", "Quillfeather", "03/15"):
        assert secret not in note, note
    assert "seen on 2024 at" in note
    validate_resource(out)


def test_many_resource_types_stay_valid_and_leak_nothing() -> None:
    patient_ref = {"reference": "Patient/pat-0001", "display": "Zoltan Quibbleworth"}
    samples: list[dict[str, Any]] = [
        {
            "resourceType": "Practitioner",
            "id": "prac-0042",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "9941339108"}],
            "name": [{"family": "Fairweather-Oduya", "given": ["Imogen"], "prefix": ["Dr."]}],
            "telecom": [{"system": "phone", "value": "+1-555-0111"}],
            "photo": [{"contentType": "image/png", "data": "iVBORw0KGgo="}],
        },
        {
            "resourceType": "Appointment",
            "status": "booked",
            "start": "2024-03-01T09:30:00Z",
            "end": "2024-03-01T10:00:00Z",
            "participant": [{"actor": patient_ref, "status": "accepted"}],
        },
        {
            "resourceType": "Provenance",
            "target": [{"reference": "Observation/obs-hr-20240214"}],
            "recorded": "2024-02-14T09:12:44Z",
            "agent": [{"who": {"reference": "Practitioner/prac-0042", "display": "Dr. Imogen"}}],
            "signature": [
                {
                    "type": [
                        {"system": "urn:iso-astm:E1762-95:2013", "code": "1.2.840.10065.1.12.1.1"}
                    ],
                    "when": "2024-02-14T09:13:02Z",
                    "who": {"reference": "Practitioner/prac-0042"},
                    "data": "c2lnbmVkIGJ5IEltb2dlbg==",
                }
            ],
        },
        {
            "resourceType": "DocumentReference",
            "status": "current",
            "date": "2024-02-14T10:00:00Z",
            "subject": patient_ref,
            "content": [
                {
                    "attachment": {
                        "contentType": "application/pdf",
                        "url": "https://ehr.example/docs/zoltan-quibbleworth.pdf",
                        "data": "JVBERi0xLjQ=",
                        "title": "Discharge letter for Zoltan Quibbleworth",
                        "creation": "2024-02-14",
                    }
                }
            ],
        },
        {
            "resourceType": "Endpoint",
            "status": "active",
            "connectionType": {"system": "http://x.example", "code": "direct-project"},
            "payloadType": [{"text": "any"}],
            "address": "mailto:zoltan.quibbleworth@mail.example",
        },
        {
            "resourceType": "Parameters",
            "parameter": [
                {"name": "patient", "resource": {"resourceType": "Patient", "id": "pat-0001"}},
                {"name": "when", "valueDateTime": "2024-02-14T09:05:00Z"},
            ],
        },
        {
            "resourceType": "Device",
            "serialNumber": "SN-77821-ZQ",
            "udiCarrier": [{"deviceIdentifier": "00844588003288"}],
            "patient": patient_ref,
        },
        {
            "resourceType": "MedicinalProductDefinition",
            "name": [{"productName": "Glucofix 500 mg tablets"}],  # required, not a HumanName
        },
        {
            "resourceType": "Location",
            "name": "Ward 4",
            "position": {"longitude": -122.6765, "latitude": 45.5231},
            "address": {"line": ["742 Marigold Crescent"], "city": "Fernhollow"},
        },
        {
            "resourceType": "Bundle",
            "type": "transaction",
            "link": [{"relation": "self", "url": "https://ehr.example/fhir?name=Quibbleworth"}],
            "entry": [
                {
                    "fullUrl": "https://ehr.example/fhir/Patient/pat-0001",
                    "resource": {"resourceType": "Patient", "id": "pat-0001", "gender": "male"},
                    "request": {
                        "method": "PUT",
                        "url": "Patient/pat-0001",
                        "ifNoneExist": "identifier=RC-448812",
                    },
                },
                {
                    "fullUrl": "urn:uuid:3f1c6a4e-8b2d-4e7a-9c5f-0d1e2f3a4b5c",
                    "resource": {"resourceType": "Basic", "code": {"text": "x"}},
                    "request": {"method": "POST", "url": "Basic?identifier=RC-448812"},
                },
            ],
        },
    ]
    for sample in samples:
        source = validate_resource(sample)
        out = deid(source)
        validate_resource(out)
        text = json.dumps(out)
        for secret in [*secrets(source), "Quibbleworth", "Zoltan", "pat-0001", "RC-448812"]:
            assert secret not in text, (sample["resourceType"], secret, text)
        assert not FULL_DATE.search(text.replace("-01-01T00:00:00Z", "")), text
        assert "iVBOR" not in text and "JVBER" not in text and "c2lnbm" not in text


def resource_type_names() -> list[str]:
    from medchain.client._fhir import _resource_type_names

    return sorted(_resource_type_names().values())


def test_every_resource_type_keeps_a_valid_labelled_shell() -> None:
    checked = 0
    for resource_type in resource_type_names():
        shell = {
            "resourceType": resource_type,
            "id": "rc-448812",
            "meta": {"versionId": "7", "lastUpdated": "2024-02-14T09:12:44Z"},
            "text": {
                "status": "generated",
                "div": '<div xmlns="http://www.w3.org/1999/xhtml">Z</div>',
            },
        }
        try:
            source = validate_resource(shell)
        except InvalidFhirResource:
            continue  # this type needs more than a shell
        out = deid(source)
        validate_resource(out)
        assert out["id"] == pseudonym(f"{resource_type}/rc-448812")
        assert out["meta"] == {"security": [dict(SECURITY_LABEL)]}
        assert "text" not in out
        checked += 1
    assert checked >= 20


# -- the instant table matches the models ------------------------------------------------------


def test_instant_table_covers_every_instant_element_in_r4b() -> None:
    """Every R4B element typed `instant` must be known, or its copy would not validate."""
    expected: set[tuple[str, str]] = set()
    for info in pkgutil.iter_modules(R4B.__path__):
        if info.name.startswith("fhirtypes"):
            continue
        module = importlib.import_module(f"{R4B.__name__}.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if not issubclass(cls, FHIRAbstractModel) or cls.__module__ != module.__name__:
                continue
            for field_name, field in cls.model_fields.items():
                alias = field.alias or field_name
                if "Instant()" in str(field.annotation) and not alias.endswith("Instant"):
                    expected.add((name, alias))
    covered = {("Signature", "when"), ("Meta", "lastUpdated")}
    assert {key for _, key in covered} == set(INSTANT_KEYS)
    for path in INSTANT_PATHS:
        *parents, element = path.split(".")
        covered.add(("".join(p[0].upper() + p[1:] for p in parents), element))
    assert covered == expected


# -- property: random people never leak -------------------------------------------------------

RARE = "JKQVWXZjkqvwxz"
names = st.text(alphabet=RARE, min_size=6, max_size=12).map(str.capitalize)
# Never 1 January: an instant's year is written as YYYY-01-01T00:00:00Z.
dates = st.dates(min_value=date(1900, 1, 2), max_value=date(2099, 12, 31)).filter(
    lambda d: (d.month, d.day) != (1, 1)
)
times = st.times().map(lambda t: t.replace(microsecond=0))


@st.composite
def person_bundle(draw: st.DrawFn) -> dict[str, Any]:
    entries: list[dict[str, Any]] = []
    count = draw(st.integers(1, 3))
    for n in range(count):
        given, family = draw(names), draw(names)
        born = draw(dates)
        seen = draw(dates)
        at = draw(times)
        mrn = f"MRN-{draw(st.integers(100000, 999999))}"
        phone = f"+1-555-{draw(st.integers(1000, 9999))}"
        uid = f"urn:uuid:00000000-0000-4000-8000-{n:012d}"
        entries.append(
            {
                "fullUrl": uid,
                "resource": {
                    "resourceType": "Patient",
                    "id": f"p{n}",
                    "identifier": [{"value": mrn}],
                    "name": [{"family": family, "given": [given]}],
                    "telecom": [{"system": "phone", "value": phone}],
                    "birthDate": born.isoformat(),
                },
            }
        )
        obs: dict[str, Any] = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": "heart rate"},
            "subject": {"reference": uid, "display": f"{given} {family}"},
            "effectivePeriod": {"start": f"{seen.isoformat()}T{at.isoformat()}Z"},
            "note": [
                {
                    "authorString": draw(names),
                    "text": f"{given} {family.upper()} ({mrn}, {phone}) seen {seen.isoformat()}",
                }
            ],
        }
        if draw(st.booleans()):
            obs["contained"] = [{"resourceType": "Patient", "id": "c", "name": [{"text": given}]}]
        entries.append({"fullUrl": f"urn:uuid:10000000-0000-4000-8000-{n:012d}", "resource": obs})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundle=person_bundle(), key=st.binary(min_size=16, max_size=64))
def test_random_people_never_leak(bundle: dict[str, Any], key: bytes) -> None:
    before = copy.deepcopy(bundle)
    out = deidentify(bundle, key, reference_year=YEAR)
    assert bundle == before
    text = json.dumps(out).lower()
    for secret in secrets(bundle):
        assert secret.lower() not in text, (secret, text)
    validate_resource(out)
    assert out == deidentify(bundle, key, reference_year=YEAR)
