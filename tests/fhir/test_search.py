"""parse_search: FHIR search parameters -> SearchQuery, and the errors for bad ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from medchain.fhir import (
    DateBound,
    InvalidSearch,
    SearchQuery,
    Token,
    UnsupportedSearchParameter,
    parse_search,
    supported_parameters,
)


def ms(text: str) -> int:
    """Milliseconds since the epoch of an ISO 8601 time, independently of the code under test."""
    return (datetime.fromisoformat(text) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(
        milliseconds=1
    )


def obs(*params: tuple[str, str], strict: bool = True) -> SearchQuery:
    return parse_search("Observation", list(params), strict)


def test_no_parameters_give_the_defaults() -> None:
    query = obs()
    assert query == SearchQuery(resource_type="Observation")
    assert (query.count, query.offset, query.sort, query.ignored) == (50, 0, None, ())


@pytest.mark.parametrize(
    "value", ["Patient/mc1abc", "mc1abc", "https://ehr.example/fhir/Patient/mc1abc"]
)
@pytest.mark.parametrize("name", ["patient", "subject"])
def test_patient_and_subject_take_a_reference_or_an_id(name: str, value: str) -> None:
    assert obs((name, value)).patient == "mc1abc"


def test_patient_and_subject_naming_one_patient_agree() -> None:
    assert obs(("patient", "mc1a"), ("subject", "Patient/mc1a")).patient == "mc1a"


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ([("subject", "Group/g1")], "subject"),
        ([("patient", "Patient/")], "patient"),
        ([("patient", "a"), ("patient", "b")], "patient"),
        ([("patient", "a"), ("subject", "Patient/b")], "subject"),
    ],
)
def test_a_reference_to_no_single_patient_is_invalid(
    params: list[tuple[str, str]], named: str
) -> None:
    with pytest.raises(InvalidSearch) as caught:
        parse_search("Observation", params, True)
    assert caught.value.parameter == named


@pytest.mark.parametrize(
    ("value", "token"),
    [
        ("http://loinc.org|8867-4", Token("http://loinc.org", "8867-4")),
        ("|8867-4", Token("", "8867-4")),
        ("8867-4", Token(None, "8867-4")),
        ("http://loinc.org|", Token("http://loinc.org", "")),
        (r"urn:x|a\,b", Token("urn:x", "a,b")),
        (r"urn:x\|y|c", Token("urn:x|y", "c")),
    ],
)
def test_code_tokens(value: str, token: Token) -> None:
    assert obs(("code", value)).codes == ((token,),)


def test_a_comma_list_is_one_or_group_and_a_repeated_parameter_another() -> None:
    query = obs(("code", "a,s|b"), ("code", "c"))
    assert query.codes == ((Token(None, "a"), Token("s", "b")), (Token(None, "c"),))


def test_category_and_status_are_tokens_too() -> None:
    query = obs(("category", "vital-signs,laboratory"), ("status", "final"))
    assert query.categories == ((Token(None, "vital-signs"), Token(None, "laboratory")),)
    assert query.statuses == ((Token(None, "final"),),)


@pytest.mark.parametrize("value", ["|", "a|b|c", ""])
def test_a_malformed_token_is_invalid(value: str) -> None:
    if value == "":
        assert obs(("code", value)).codes == ()  # FHIR: an empty value is ignored
        return
    with pytest.raises(InvalidSearch) as caught:
        obs(("code", value))
    assert caught.value.parameter == "code"
    assert "code" in caught.value.message


@pytest.mark.parametrize(
    ("value", "lower", "upper"),
    [
        ("2024", "2024-01-01T00:00:00+00:00", "2025-01-01T00:00:00+00:00"),
        ("2024-02", "2024-02-01T00:00:00+00:00", "2024-03-01T00:00:00+00:00"),
        ("2023-12", "2023-12-01T00:00:00+00:00", "2024-01-01T00:00:00+00:00"),
        ("2024-03-15", "2024-03-15T00:00:00+00:00", "2024-03-16T00:00:00+00:00"),
        ("2024-03-15T10:30Z", "2024-03-15T10:30:00+00:00", "2024-03-15T10:31:00+00:00"),
        ("2024-03-15T10:30:05Z", "2024-03-15T10:30:05+00:00", "2024-03-15T10:30:06+00:00"),
        ("2024-03-15T10:30:05.2Z", "2024-03-15T10:30:05.2+00:00", "2024-03-15T10:30:05.3+00:00"),
        (
            "2024-03-15T10:30:05.123456Z",
            "2024-03-15T10:30:05.123+00:00",
            "2024-03-15T10:30:05.124+00:00",
        ),
        ("2024-03-15T23:30:00-05:00", "2024-03-16T04:30:00+00:00", "2024-03-16T04:30:01+00:00"),
        ("2024-03-15T01:00:00+05:30", "2024-03-14T19:30:00+00:00", "2024-03-14T19:30:01+00:00"),
        ("2024-03-15T10:30:05", "2024-03-15T10:30:05+00:00", "2024-03-15T10:30:06+00:00"),
        ("1969-07-20", "1969-07-20T00:00:00+00:00", "1969-07-21T00:00:00+00:00"),
    ],
)
def test_a_date_covers_the_range_of_its_precision(value: str, lower: str, upper: str) -> None:
    assert obs(("date", value)).dates == (DateBound("eq", ms(lower), ms(upper) - 1),)


def test_the_last_year_fhir_allows_ends_on_its_last_millisecond() -> None:
    bound = obs(("date", "9999")).dates[0]
    assert bound.upper_ms == ms("9999-12-31T23:59:59.999+00:00")


@pytest.mark.parametrize("prefix", ["eq", "ge", "le", "gt", "lt"])
def test_each_prefix_is_kept_with_the_range(prefix: str) -> None:
    (bound,) = obs(("date", f"{prefix}2024-03")).dates
    assert bound == DateBound(
        prefix, ms("2024-03-01T00:00:00+00:00"), ms("2024-04-01T00:00:00+00:00") - 1
    )


def test_repeated_dates_and_last_updated_are_all_kept() -> None:
    query = obs(("date", "ge2024-01"), ("date", "lt2024-06"), ("_lastUpdated", "gt2024"))
    assert [b.prefix for b in query.dates] == ["ge", "lt"]
    assert query.last_updated == (
        DateBound("gt", ms("2024-01-01T00:00:00+00:00"), ms("2025-01-01T00:00:00+00:00") - 1),
    )


@pytest.mark.parametrize(
    "value",
    [
        "xx",
        "ge",
        "ne2024",
        "2024-13",
        "2024-00",
        "2023-02-29",
        "2024-03-15T25:00Z",
        "2024-03-15T10:61Z",
        "2024-03-15T10:00:60Z",
        "2024-03-15T10:00:00+15:00",
        "2024-3-5",
        "24",
        "2024-03-15 10:00",
    ],
)
@pytest.mark.parametrize("name", ["date", "_lastUpdated"])
def test_a_malformed_date_is_invalid_and_names_the_parameter(name: str, value: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        obs((name, value))
    assert caught.value.parameter == name
    assert caught.value.message.startswith(f"{name}=")


@pytest.mark.parametrize(("value", "count"), [("0", 0), ("10", 10), ("1000", 1000), ("5000", 1000)])
def test_count_is_a_page_size_up_to_a_thousand(value: str, count: int) -> None:
    assert obs(("_count", value)).count == count


@pytest.mark.parametrize("name", ["_count", "_offset"])
@pytest.mark.parametrize("value", ["-1", "abc", "1.5", "٣", "+3"])
def test_a_count_or_offset_that_is_no_whole_number_is_invalid(name: str, value: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        obs((name, value))
    assert caught.value.parameter == name
    assert "whole number" in caught.value.message


def test_count_given_twice_is_invalid() -> None:
    with pytest.raises(InvalidSearch):
        obs(("_count", "10"), ("_count", "20"))


def test_offset_is_the_paging_cursor() -> None:
    assert obs(("_offset", "150")).offset == 150


@pytest.mark.parametrize("value", ["date", "-date", "_lastUpdated", "-_lastUpdated"])
def test_the_supported_sorts(value: str) -> None:
    assert obs(("_sort", value)).sort == value


@pytest.mark.parametrize("value", ["code", "date,-_lastUpdated", "+date"])
def test_another_sort_is_invalid(value: str) -> None:
    with pytest.raises(InvalidSearch) as caught:
        obs(("_sort", value))
    assert caught.value.parameter == "_sort"


def test_id_takes_an_or_list() -> None:
    assert obs(("_id", "a,b")).ids == (("a", "b"),)


@pytest.mark.parametrize("name", ["name", "code:text", "date:missing", "subject.name", "_has"])
def test_an_unknown_parameter_is_refused_when_strict(name: str) -> None:
    with pytest.raises(UnsupportedSearchParameter) as caught:
        obs((name, "x"))
    assert caught.value.parameter == name
    assert name in caught.value.message


def test_unknown_parameters_are_listed_once_and_ignored_when_lenient() -> None:
    query = obs(("name", "x"), ("code", "a"), ("name", "y"), ("_has", "z"), strict=False)
    assert query.ignored == ("name", "_has")
    assert query.codes == ((Token(None, "a"),),)


def test_a_parameter_of_another_type_is_unsupported() -> None:
    with pytest.raises(UnsupportedSearchParameter):
        parse_search("Immunization", [("category", "x")], True)
    with pytest.raises(UnsupportedSearchParameter):
        parse_search("Patient", [("patient", "mc1a")], True)
    assert parse_search("Patient", [("patient", "mc1a")], False).ignored == ("patient",)


def test_format_parameters_change_nothing() -> None:
    assert obs(("_format", "json"), ("_pretty", "true")) == obs()


def test_empty_values_are_ignored() -> None:
    assert obs(("date", ""), ("_count", ""), ("patient", ""), ("_sort", "")) == obs()


def test_supported_parameters_per_type() -> None:
    general = {"_id", "_lastUpdated", "_count", "_sort", "_offset"}
    assert supported_parameters("Observation") == general | {
        "patient",
        "subject",
        "code",
        "date",
        "category",
        "status",
    }
    assert supported_parameters("Immunization") == general | {
        "patient",
        "subject",
        "code",
        "date",
        "status",
    }
    assert supported_parameters("Patient") == general


def test_errors_are_medchain_errors_with_codes() -> None:
    with pytest.raises(InvalidSearch) as invalid:
        obs(("date", "xx"))
    with pytest.raises(UnsupportedSearchParameter) as unsupported:
        obs(("foo", "x"))
    assert (invalid.value.code, unsupported.value.code) == (
        "invalid_search",
        "unsupported_search_parameter",
    )
