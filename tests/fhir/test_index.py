"""ResourceIndex: the facade's in-memory index of current resources and FHIR search over it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medchain.fhir import IndexedResource, ResourceIndex, SearchPage, parse_search

LOINC = "http://loinc.org"
HEART_RATE = "8867-4"
ALICE, BOB = "mc1alice", "mc1bob"


def ms(text: str) -> int:
    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )


def observation(
    id: str,
    *,
    patient: str = ALICE,
    code: tuple[str | None, str] = (LOINC, HEART_RATE),
    when: str | None = "2024-03-15T10:00:00Z",
    version: int = 1,
    updated: int = 1_000,
    **elements: Any,
) -> IndexedResource:
    coding = {"code": code[1]} | ({"system": code[0]} if code[0] else {})
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": id,
        "meta": {"versionId": str(version)},
        "status": "final",
        "code": {"coding": [coding]},
        "subject": {"reference": f"Patient/{patient}"},
    }
    if when is not None:
        resource["effectiveDateTime"] = when
    resource.update(elements)
    return IndexedResource("Observation", id, version, updated, patient, resource)


def search(index: ResourceIndex, *params: tuple[str, str], rtype: str = "Observation") -> list[str]:
    """The ids of the first page a search returns, in order."""
    page = index.search(parse_search(rtype, list(params), True))
    return [item.id for item in page.items]


@pytest.fixture
def index() -> ResourceIndex:
    return ResourceIndex()


def test_put_then_get_and_count(index: ResourceIndex) -> None:
    item = observation("o1")
    index.put(item)
    assert index.get("Observation", "o1") == item
    assert index.get("Observation", "nope") is None
    assert index.get("Condition", "o1") is None
    assert index.count() == 1


def test_get_returns_a_copy_the_caller_may_change(index: ResourceIndex) -> None:
    index.put(observation("o1"))
    got = index.get("Observation", "o1")
    assert got is not None
    got.resource["status"] = "changed"
    again = index.get("Observation", "o1")
    assert again is not None and again.resource["status"] == "final"


def test_a_new_version_replaces_the_old_and_its_search_columns(index: ResourceIndex) -> None:
    index.put(observation("o1", code=(LOINC, "1111-1")))
    newer = observation("o1", code=(LOINC, "2222-2"), version=2, updated=2_000)
    index.put(newer)
    assert index.get("Observation", "o1") == newer
    assert index.count() == 1
    assert search(index, ("code", "1111-1")) == []
    assert search(index, ("code", "2222-2")) == ["o1"]


def test_an_older_version_does_not_roll_a_resource_back(index: ResourceIndex) -> None:
    newer = observation("o1", version=3, code=(LOINC, "3333-3"))
    index.put(newer)
    index.put(observation("o1", version=2, code=(LOINC, "2222-2")))
    assert index.get("Observation", "o1") == newer
    assert search(index, ("code", "2222-2")) == []


def test_remove_forgets_the_resource_everywhere(index: ResourceIndex) -> None:
    index.put(observation("o1"))
    index.put(observation("o2"))
    index.remove("Observation", "o1")
    index.remove("Observation", "absent")
    assert index.get("Observation", "o1") is None
    assert index.count() == 1
    assert search(index, ("code", HEART_RATE)) == ["o2"]
    assert [i.id for i in index.all_of(None, None, None)] == ["o2"]


def test_the_same_id_in_two_types_is_two_resources(index: ResourceIndex) -> None:
    index.put(observation("x"))
    index.put(IndexedResource("Condition", "x", 1, 1, ALICE, {"resourceType": "Condition"}))
    assert index.count() == 2
    index.remove("Condition", "x")
    assert index.get("Observation", "x") is not None


def test_search_is_by_type_and_patient(index: ResourceIndex) -> None:
    index.put(observation("a1"))
    index.put(observation("b1", patient=BOB))
    index.put(IndexedResource("Condition", "c1", 1, 1, ALICE, {"resourceType": "Condition"}))
    assert search(index) == ["a1", "b1"]
    assert search(index, ("patient", f"Patient/{ALICE}")) == ["a1"]
    assert search(index, ("subject", BOB)) == ["b1"]
    assert search(index, ("patient", "mc1nobody")) == []
    assert search(index, rtype="Condition") == ["c1"]


def test_code_with_and_without_a_system(index: ResourceIndex) -> None:
    index.put(observation("loinc", code=(LOINC, "1234-5")))
    index.put(observation("other", code=("http://snomed.info/sct", "1234-5")))
    index.put(observation("bare", code=(None, "1234-5")))
    assert search(index, ("code", "1234-5")) == ["bare", "loinc", "other"]
    assert search(index, ("code", f"{LOINC}|1234-5")) == ["loinc"]
    assert search(index, ("code", "|1234-5")) == ["bare"]
    assert search(index, ("code", f"{LOINC}|")) == ["loinc"]
    assert search(index, ("code", f"{LOINC}|9999-9")) == []


def test_code_or_lists_and_repeated_code_and(index: ResourceIndex) -> None:
    index.put(observation("hr", code=(LOINC, HEART_RATE)))
    index.put(observation("bp", code=(LOINC, "85354-9")))
    index.put(observation("wt", code=(LOINC, "29463-7")))
    two = {"coding": [{"system": LOINC, "code": HEART_RATE}, {"code": "local-hr"}]}
    both = observation("both")
    both.resource["code"] = two
    index.put(both)
    assert search(index, ("code", f"{HEART_RATE},{LOINC}|85354-9")) == ["both", "bp", "hr"]
    assert search(index, ("code", HEART_RATE), ("code", "local-hr")) == ["both"]


@pytest.mark.parametrize(
    ("rtype", "element", "value"),
    [
        ("Condition", "code", {"coding": [{"system": "s", "code": "c"}]}),
        ("Procedure", "code", {"coding": [{"system": "s", "code": "c"}]}),
        ("DiagnosticReport", "code", {"coding": [{"system": "s", "code": "c"}]}),
        ("AllergyIntolerance", "code", {"coding": [{"system": "s", "code": "c"}]}),
        (
            "MedicationStatement",
            "medicationCodeableConcept",
            {"coding": [{"system": "s", "code": "c"}]},
        ),
        (
            "MedicationRequest",
            "medicationCodeableConcept",
            {"coding": [{"system": "s", "code": "c"}]},
        ),
        ("Immunization", "vaccineCode", {"coding": [{"system": "s", "code": "c"}]}),
        (
            "Encounter",
            "type",
            [{"coding": [{"code": "x"}]}, {"coding": [{"system": "s", "code": "c"}]}],
        ),
        ("DocumentReference", "type", {"coding": [{"system": "s", "code": "c"}]}),
    ],
)
def test_code_searches_each_types_own_element(
    index: ResourceIndex, rtype: str, element: str, value: Any
) -> None:
    index.put(IndexedResource(rtype, "r1", 1, 1, ALICE, {"resourceType": rtype, element: value}))
    index.put(IndexedResource(rtype, "r2", 1, 1, ALICE, {"resourceType": rtype, "code": value}))
    expected = ["r1", "r2"] if element == "code" else ["r1"]
    assert search(index, ("code", "s|c"), rtype=rtype) == expected


DAY = "2024-03-15"


@pytest.mark.parametrize(
    ("rtype", "resource"),
    [
        ("Observation", {"effectiveDateTime": f"{DAY}T10:00:00Z"}),
        ("Observation", {"effectivePeriod": {"start": f"{DAY}T10:00:00Z"}}),
        ("Observation", {"issued": f"{DAY}T10:00:00.000Z"}),
        ("Condition", {"onsetDateTime": DAY}),
        ("Condition", {"recordedDate": DAY}),
        ("AllergyIntolerance", {"recordedDate": DAY}),
        ("AllergyIntolerance", {"onsetDateTime": DAY}),
        ("MedicationStatement", {"effectiveDateTime": DAY}),
        ("MedicationStatement", {"effectivePeriod": {"start": DAY}}),
        ("MedicationRequest", {"authoredOn": DAY}),
        ("Immunization", {"occurrenceDateTime": DAY}),
        ("DiagnosticReport", {"effectiveDateTime": DAY}),
        ("DiagnosticReport", {"issued": f"{DAY}T10:00:00Z"}),
        ("Procedure", {"performedDateTime": DAY}),
        ("Procedure", {"performedPeriod": {"start": DAY}}),
        ("Encounter", {"period": {"start": DAY}}),
        ("DocumentReference", {"date": f"{DAY}T10:00:00Z"}),
        ("Consent", {"dateTime": DAY}),
    ],
)
def test_date_searches_each_types_clinical_date(
    index: ResourceIndex, rtype: str, resource: dict[str, Any]
) -> None:
    index.put(IndexedResource(rtype, "r1", 1, 1, ALICE, {"resourceType": rtype, **resource}))
    assert search(index, ("date", DAY), rtype=rtype) == ["r1"]
    assert search(index, ("date", "2024-03-16"), rtype=rtype) == []


def test_the_first_date_element_present_wins(index: ResourceIndex) -> None:
    index.put(observation("o1", when="2020-01-01", issued="2024-03-15T10:00:00Z"))
    assert search(index, ("date", "2020")) == ["o1"]
    assert search(index, ("date", "2024")) == []


def test_a_malformed_resource_date_counts_as_none(index: ResourceIndex) -> None:
    index.put(observation("o1", when="not a date", issued="2024-03-15T10:00:00Z"))
    index.put(observation("o2", when="not a date"))
    assert search(index, ("date", "2024")) == ["o1"]
    assert search(index, ("_sort", "date")) == ["o1", "o2"]


@pytest.mark.parametrize(
    ("value", "matches"),
    [
        # The resource is "2024-03": all of March. FHIR R4 search 3.1.1.4 range rules.
        ("2024", True),  # eq: the search range contains the resource's
        ("2024-03", True),
        ("2024-03-15", False),  # eq: March is not inside one day
        ("ge2024-03-15", True),  # ge: March reaches above the 15th
        ("ge2024-03", True),  # ge: equal ranges
        ("ge2024-03-31", False),  # ge: nothing of March is above the 31st
        ("ge2024-04-01", False),
        ("gt2024-03-15", True),
        ("gt2024-03", False),
        ("gt2024-02", True),
        ("le2024-03-15", True),  # le: March reaches below the 15th
        ("le2024-03-01", False),  # le: nothing of March is below the 1st
        ("le2024-03", True),
        ("lt2024-03-15", True),
        ("lt2024-03", False),
        ("lt2024-04", True),
        ("eq2024-03", True),
    ],
)
def test_prefixes_follow_fhirs_range_rules(index: ResourceIndex, value: str, matches: bool) -> None:
    index.put(observation("march", when="2024-03"))
    assert search(index, ("date", value)) == (["march"] if matches else [])


def test_a_range_is_two_bounds_anded(index: ResourceIndex) -> None:
    for day in range(1, 29):
        index.put(observation(f"d{day:02}", when=f"2024-02-{day:02}T12:00:00Z"))
    found = search(index, ("date", "ge2024-02-10"), ("date", "lt2024-02-13"))
    assert found == ["d10", "d11", "d12"]


def test_time_zones_are_compared_in_utc(index: ResourceIndex) -> None:
    index.put(observation("late", when="2024-03-15T23:30:00-05:00"))  # 04:30 UTC on the 16th
    index.put(observation("early", when="2024-03-16T01:00:00+05:30"))  # 19:30 UTC on the 15th
    assert search(index, ("date", "2024-03-16")) == ["late"]
    assert search(index, ("date", "2024-03-15")) == ["early"]
    assert search(index, ("date", "ge2024-03-16T04:30:00Z")) == ["late"]
    assert search(index, ("date", "lt2024-03-15T19:30:00Z")) == []
    assert search(index, ("date", "2024-03-15T14:00:00-05:00")) == []
    assert search(index, ("date", "2024-03-15T14:30:00-05:00")) == ["early"]


def test_category_and_status(index: ResourceIndex) -> None:
    vital = [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "vital-signs",
                }
            ]
        }
    ]
    index.put(observation("v", category=vital))
    index.put(observation("p", status="preliminary"))
    index.put(observation("n"))
    assert search(index, ("category", "vital-signs")) == ["v"]
    assert search(index, ("status", "preliminary")) == ["p"]
    assert search(index, ("status", "final,preliminary")) == ["n", "p", "v"]
    assert search(index, ("status", "final"), ("category", "vital-signs")) == ["v"]


def test_clinical_status_and_code_categories(index: ResourceIndex) -> None:
    clinical = "http://terminology.hl7.org/CodeSystem/condition-clinical"
    active = {"coding": [{"system": clinical, "code": "active"}]}
    resolved = {"coding": [{"system": clinical, "code": "resolved"}]}
    for id, status in (("c1", active), ("c2", resolved)):
        resource = {"resourceType": "Condition", "clinicalStatus": status}
        index.put(IndexedResource("Condition", id, 1, 1, ALICE, resource))
    allergy = {"resourceType": "AllergyIntolerance", "category": ["food", "medication"]}
    index.put(IndexedResource("AllergyIntolerance", "a1", 1, 1, ALICE, allergy))
    assert search(index, ("status", "active"), rtype="Condition") == ["c1"]
    assert search(index, ("status", f"{clinical}|resolved"), rtype="Condition") == ["c2"]
    assert search(index, ("category", "food"), rtype="AllergyIntolerance") == ["a1"]
    assert search(index, ("category", "|medication"), rtype="AllergyIntolerance") == ["a1"]
    assert search(index, ("category", "biologic"), rtype="AllergyIntolerance") == []


def test_last_updated_and_id(index: ResourceIndex) -> None:
    index.put(observation("old", updated=ms("2024-01-01T00:00:00+00:00")))
    index.put(observation("new", updated=ms("2024-06-01T12:00:00.250+00:00")))
    assert search(index, ("_lastUpdated", "ge2024-06-01")) == ["new"]
    assert search(index, ("_lastUpdated", "lt2024-06")) == ["old"]
    assert search(index, ("_lastUpdated", "2024-06-01T12:00:00Z")) == ["new"]
    assert search(index, ("_lastUpdated", "gt2024-06-01T12:00:00.250Z")) == []
    assert search(index, ("_id", "old,absent")) == ["old"]
    assert search(index, ("_id", "old"), ("_id", "new")) == []


def test_sorts_put_resources_without_a_date_last(index: ResourceIndex) -> None:
    index.put(observation("a", when="2024-05-01", updated=3))
    index.put(observation("b", when=None, updated=1))
    index.put(observation("c", when="2023", updated=2))
    index.put(observation("d", when="2024-05-01", updated=4))
    assert search(index) == ["a", "b", "c", "d"]
    assert search(index, ("_sort", "date")) == ["c", "a", "d", "b"]
    assert search(index, ("_sort", "-date")) == ["a", "d", "c", "b"]
    assert search(index, ("_sort", "_lastUpdated")) == ["b", "c", "a", "d"]
    assert search(index, ("_sort", "-_lastUpdated")) == ["d", "a", "c", "b"]


def test_paging_through_250_results_loses_and_repeats_nothing(index: ResourceIndex) -> None:
    for n in range(250):
        index.put(observation(f"o{n:03}", when=f"2024-01-01T00:{n // 60:02}:{n % 60:02}Z"))
    index.put(observation("other", patient=BOB))
    seen: list[str] = []
    offset = 0
    while True:
        params = [
            ("patient", ALICE),
            ("_sort", "-date"),
            ("_count", "50"),
            ("_offset", str(offset)),
        ]
        page = index.search(parse_search("Observation", params, True))
        assert (page.total, page.offset, page.count) == (250, offset, 50)
        seen += [item.id for item in page.items]
        if len(page.items) < page.count:
            break
        offset += page.count
    assert seen == [f"o{n:03}" for n in reversed(range(250))]


def test_a_count_of_zero_gives_only_the_total(index: ResourceIndex) -> None:
    index.put(observation("o1"))
    page = index.search(parse_search("Observation", [("_count", "0")], True))
    assert page == SearchPage([], 1, 0, 0)


def test_a_page_past_the_end_is_empty_with_the_total(index: ResourceIndex) -> None:
    index.put(observation("o1"))
    page = index.search(parse_search("Observation", [("_offset", "10")], True))
    assert page == SearchPage([], 1, 10, 50)


ORDERS = {
    "date": lambda r: (r[1] is None, r[1] or 0, r[0]),
    "-date": lambda r: (r[1] is None, -(r[1] or 0), r[0]),
    "_lastUpdated": lambda r: (r[2], r[0]),
    "-_lastUpdated": lambda r: (-r[2], r[0]),
    None: lambda r: r[0],
}


@given(
    days=st.lists(st.one_of(st.none(), st.integers(1, 28)), min_size=0, max_size=60),
    updates=st.lists(st.integers(0, 5), min_size=60, max_size=60),
    mine=st.lists(st.booleans(), min_size=60, max_size=60),
    page_size=st.integers(1, 25),
    sort=st.sampled_from(sorted(ORDERS, key=str)),
)
def test_paging_returns_every_match_once_in_sort_order(
    days: list[int | None], updates: list[int], mine: list[bool], page_size: int, sort: str | None
) -> None:
    index = ResourceIndex()
    rows = []
    for n, day in enumerate(days):
        when = None if day is None else f"2024-02-{day:02}"
        patient = ALICE if mine[n] else BOB
        index.put(observation(f"o{n:02}", when=when, updated=updates[n], patient=patient))
        if mine[n]:
            start = None if day is None else ms(f"2024-02-{day:02}T00:00:00+00:00")
            rows.append((f"o{n:02}", start, updates[n]))
    expected = [row[0] for row in sorted(rows, key=ORDERS[sort])]
    params = [("patient", ALICE), ("_count", str(page_size))] + ([("_sort", sort)] if sort else [])
    seen: list[str] = []
    for offset in range(0, len(rows) + page_size, page_size):
        page = index.search(parse_search("Observation", [*params, ("_offset", str(offset))], True))
        assert page.total == len(rows)
        seen += [item.id for item in page.items]
    assert seen == expected


def test_all_of_streams_in_type_and_id_order_with_filters(index: ResourceIndex) -> None:
    for n in range(600):  # more than one batch
        index.put(observation(f"o{n:03}", patient=ALICE if n % 2 else BOB, updated=n))
    condition = {"resourceType": "Condition"}
    index.put(IndexedResource("Condition", "c1", 1, 999, ALICE, condition))
    every = [(i.resource_type, i.id) for i in index.all_of(None, None, None)]
    assert every == sorted(every) and len(every) == 601
    alice = [i.id for i in index.all_of(ALICE, None, None)]
    assert alice == ["c1"] + [f"o{n:03}" for n in range(1, 600, 2)]
    assert [i.id for i in index.all_of(ALICE, frozenset({"Condition"}), None)] == ["c1"]
    recent = [i.id for i in index.all_of(BOB, frozenset({"Observation"}), 590)]
    assert recent == ["o590", "o592", "o594", "o596", "o598"]
    assert list(index.all_of(None, frozenset(), None)) == []


def test_writers_are_not_blocked_while_all_of_is_read(index: ResourceIndex) -> None:
    for n in range(300):
        index.put(observation(f"o{n:03}"))
    stream = index.all_of(None, None, None)
    first = next(stream)
    index.put(observation("zzz"))  # would deadlock if the stream held the lock
    index.remove("Observation", "o299")
    rest = [item.id for item in stream]
    assert first.id == "o000"
    assert rest[-1] == "zzz" and "o299" not in rest


def test_puts_from_many_threads_all_land(index: ResourceIndex) -> None:
    def put_range(start: int) -> None:
        for n in range(start, start + 100):
            index.put(observation(f"o{n:04}", code=(LOINC, str(n % 7))))

    threads = [threading.Thread(target=put_range, args=(k * 100,)) for k in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert index.count() == 400
    page = index.search(parse_search("Observation", [("code", "3"), ("_count", "1000")], True))
    assert page.total == len([n for n in range(400) if n % 7 == 3])


def test_ten_thousand_resources_searched_by_patient_and_code(index: ResourceIndex) -> None:
    codes = [HEART_RATE, "85354-9", "29463-7", "8310-5", "2339-0"]
    for n in range(10_000):
        patient = f"mc1p{n % 100:03}"
        day = f"2024-{n % 12 + 1:02}-{n % 28 + 1:02}"
        index.put(observation(f"o{n:05}", patient=patient, code=(LOINC, codes[n % 5]), when=day))
    assert index.count() == 10_000
    params = [("patient", "mc1p007"), ("code", f"{LOINC}|{HEART_RATE}"), ("_sort", "date")]
    page = index.search(parse_search("Observation", params, True))
    # n ≡ 7 (mod 100) and n ≡ 0 (mod 5) never meet; n ≡ 7 (mod 100) and n ≡ 2 (mod 5) always do.
    assert page.total == 0
    params[1] = ("code", f"{LOINC}|29463-7")
    page = index.search(parse_search("Observation", params, True))
    expected = [n for n in range(10_000) if n % 100 == 7]
    assert page.total == len(expected) == 100
    assert len(page.items) == 50
    assert all(i.patient == "mc1p007" for i in page.items)
    dates = [i.resource["effectiveDateTime"] for i in page.items]
    assert dates == sorted(dates)
