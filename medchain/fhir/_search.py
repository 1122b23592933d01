"""FHIR search parameters -> a SearchQuery the index runs as SQL.

Parsing is separate from the index so the REST layer can answer a malformed or unsupported
parameter (400 / 422) before touching any data, and so the rules (FHIR R4 3.1.1.4 prefixes on
date ranges, token `system|code`, comma = OR, repeated parameter = AND) live in one place.
Dates without a zone are read as UTC: medchain times are UTC and a facade has no local zone.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import NamedTuple

from medchain.types import MedchainError

DEFAULT_COUNT = 50
MAX_COUNT = 1000
SORTS = ("date", "-date", "_lastUpdated", "-_lastUpdated")
PREFIXES = ("eq", "ge", "le", "gt", "lt")

CODE_ELEMENTS: dict[str, str] = {
    "Observation": "code",
    "Condition": "code",
    "Procedure": "code",
    "DiagnosticReport": "code",
    "AllergyIntolerance": "code",
    "MedicationStatement": "medicationCodeableConcept",
    "MedicationRequest": "medicationCodeableConcept",
    "Immunization": "vaccineCode",
    "Encounter": "type",
    "DocumentReference": "type",
}
"""The element `code=` searches, per resource type."""

DATE_PATHS: dict[str, tuple[tuple[str, ...], ...]] = {
    "Observation": (("effectiveDateTime",), ("effectivePeriod", "start"), ("issued",)),
    "Condition": (("onsetDateTime",), ("recordedDate",)),
    "AllergyIntolerance": (("recordedDate",), ("onsetDateTime",)),
    "MedicationStatement": (("effectiveDateTime",), ("effectivePeriod", "start")),
    "MedicationRequest": (("authoredOn",),),
    "Immunization": (("occurrenceDateTime",),),
    "DiagnosticReport": (("effectiveDateTime",), ("issued",)),
    "Procedure": (("performedDateTime",), ("performedPeriod", "start")),
    "Encounter": (("period", "start"),),
    "DocumentReference": (("date",),),
    "Consent": (("dateTime",),),
}
"""Where a resource's clinical date is, per type: the first path present wins."""

CATEGORY_ELEMENTS: dict[str, str] = {
    "Observation": "category",
    "Condition": "category",
    "AllergyIntolerance": "category",
    "MedicationStatement": "category",
    "MedicationRequest": "category",
    "DiagnosticReport": "category",
    "Procedure": "category",
    "DocumentReference": "category",
    "Consent": "category",
}

STATUS_ELEMENTS: dict[str, str] = {
    "Condition": "clinicalStatus",
    "AllergyIntolerance": "clinicalStatus",
    **{
        name: "status"
        for name in (
            "Observation",
            "MedicationStatement",
            "MedicationRequest",
            "Immunization",
            "DiagnosticReport",
            "Procedure",
            "Encounter",
            "DocumentReference",
            "Consent",
        )
    },
}

_GENERAL = frozenset({"_id", "_lastUpdated", "_count", "_sort", "_offset"})
_NO_OPS = frozenset({"_format", "_pretty"})
"""General parameters that do not change which resources match (the REST layer's concern)."""

_DATE = re.compile(
    r"(\d{4})(?:-(\d{2})(?:-(\d{2})"
    r"(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?"
)
_DAY_MS = 86_400_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


class UnsupportedSearchParameter(MedchainError):
    """A search parameter this facade does not implement (422 under `handling=strict`)."""

    code = "unsupported_search_parameter"

    def __init__(self, parameter: str) -> None:
        super().__init__(
            f"search parameter {parameter!r} is not supported; "
            "see the CapabilityStatement at /metadata for the ones that are"
        )
        self.parameter = parameter


class InvalidSearch(MedchainError):
    """A supported search parameter with a malformed value (400)."""

    code = "invalid_search"

    def __init__(self, message: str, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class Token(NamedTuple):
    """One `system|code` token: system None matches any system, "" only codes without one;
    code "" (from `system|`) matches every code of the system."""

    system: str | None
    code: str


class DateBound(NamedTuple):
    """A prefixed date search value: [lower_ms, upper_ms] is the range its precision covers."""

    prefix: str
    lower_ms: int
    upper_ms: int


@dataclass(frozen=True)
class SearchQuery:
    """What to find. Token fields are groups: tokens inside a group are OR'ed (a comma list),
    the groups AND'ed (a repeated parameter); date bounds are AND'ed."""

    resource_type: str
    patient: str | None = None
    codes: tuple[tuple[Token, ...], ...] = ()
    dates: tuple[DateBound, ...] = ()
    categories: tuple[tuple[Token, ...], ...] = ()
    statuses: tuple[tuple[Token, ...], ...] = ()
    last_updated: tuple[DateBound, ...] = ()
    ids: tuple[tuple[str, ...], ...] = ()
    count: int = DEFAULT_COUNT
    offset: int = 0
    sort: str | None = None
    ignored: tuple[str, ...] = ()


def supported_parameters(resource_type: str) -> frozenset[str]:
    """The search parameters parse_search accepts for a type (for the CapabilityStatement)."""
    names = set(_GENERAL)
    if resource_type in STATUS_ELEMENTS or resource_type in DATE_PATHS:
        names |= {"patient", "subject"}
    if resource_type in CODE_ELEMENTS:
        names.add("code")
    if resource_type in DATE_PATHS:
        names.add("date")
    if resource_type in CATEGORY_ELEMENTS:
        names.add("category")
    if resource_type in STATUS_ELEMENTS:
        names.add("status")
    return frozenset(names)


def parse_search(
    resource_type: str, params: Sequence[tuple[str, str]], strict: bool
) -> SearchQuery:
    """Read FHIR search parameters for one type. Unknown parameters raise
    UnsupportedSearchParameter when strict, else are listed in `ignored`; malformed values
    raise InvalidSearch. Empty values are ignored, as FHIR says."""
    supported = supported_parameters(resource_type)
    fields: dict[str, list[str]] = {}
    ignored: list[str] = []
    for name, value in params:
        if name in _NO_OPS:
            continue
        if name not in supported:
            if strict:
                raise UnsupportedSearchParameter(name)
            ignored.append(name)
        elif value != "":
            fields.setdefault(name, []).append(value)
    return SearchQuery(
        resource_type=resource_type,
        patient=_patient(
            [("patient", v) for v in fields.get("patient", [])]
            + [("subject", v) for v in fields.get("subject", [])]
        ),
        codes=_token_groups("code", fields.get("code", [])),
        dates=tuple(_date_bound("date", v) for v in fields.get("date", [])),
        categories=_token_groups("category", fields.get("category", [])),
        statuses=_token_groups("status", fields.get("status", [])),
        last_updated=tuple(_date_bound("_lastUpdated", v) for v in fields.get("_lastUpdated", [])),
        ids=tuple(tuple(map(_unescape, _split(v, ","))) for v in fields.get("_id", [])),
        count=min(_single_int("_count", fields.get("_count"), DEFAULT_COUNT), MAX_COUNT),
        offset=_single_int("_offset", fields.get("_offset"), 0),
        sort=_sort(fields.get("_sort")),
        ignored=tuple(dict.fromkeys(ignored)),
    )


def date_range(text: str) -> tuple[int, int]:
    """[lower, upper] ms since the epoch that a FHIR date, dateTime or instant covers at its
    precision ("2024-03" -> all of March, UTC). Raises ValueError if it is not one."""
    match = _DATE.fullmatch(text)
    if match is None:
        raise ValueError(f"not a FHIR date: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if month is None:
        return _day_ms(int(year), 1, 1), _day_ms(int(year) + 1, 1, 1) - 1
    if day is None:
        following = (int(year) + 1, 1) if month == "12" else (int(year), int(month) + 1)
        return _day_ms(int(year), int(month), 1), _day_ms(*following, 1) - 1
    start = _day_ms(int(year), int(month), int(day))
    if hour is None:
        return start, start + _DAY_MS - 1
    if int(hour) > 23 or int(minute) > 59 or int(second or 0) > 59:
        raise ValueError(f"not a time of day: {text!r}")
    lower = start + (int(hour) * 60 + int(minute)) * 60_000 - _zone_ms(zone)
    if second is None:
        return lower, lower + 60_000 - 1
    lower += int(second) * 1000
    if fraction is None:
        return lower, lower + 999
    digits = fraction[:3]
    width = 10 ** (3 - len(digits))
    lower += int(digits) * width
    return lower, lower + width - 1


def _day_ms(year: int, month: int, day: int) -> int:
    """Midnight UTC of a day, in ms; year 10000 stands for the day after 9999-12-31."""
    if year == 10000:
        return (date(9999, 12, 31).toordinal() + 1 - _EPOCH_ORDINAL) * _DAY_MS
    return (date(year, month, day).toordinal() - _EPOCH_ORDINAL) * _DAY_MS


def _zone_ms(zone: str | None) -> int:
    if zone is None or zone == "Z":
        return 0
    hours, minutes = int(zone[1:3]), int(zone[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"not a time zone: {zone!r}")
    offset = (hours * 60 + minutes) * 60_000
    return -offset if zone[0] == "-" else offset


def _date_bound(parameter: str, value: str) -> DateBound:
    prefix, text = (value[:2], value[2:]) if value[:2] in PREFIXES else ("eq", value)
    try:
        lower, upper = date_range(text)
    except ValueError:
        raise InvalidSearch(
            f"{parameter}={value!r} is not a date: give [eq|ge|le|gt|lt]YYYY[-MM[-DD"
            "[Thh:mm[:ss[.fff]][Z|+hh:mm]]]], e.g. ge2024-03-15",
            parameter,
        ) from None
    return DateBound(prefix, lower, upper)


def _token_groups(parameter: str, values: list[str]) -> tuple[tuple[Token, ...], ...]:
    return tuple(tuple(_token(parameter, item) for item in _split(v, ",")) for v in values)


def _token(parameter: str, text: str) -> Token:
    parts = [_unescape(part) for part in _split(text, "|")]
    if len(parts) == 1 and parts[0]:
        return Token(None, parts[0])
    if len(parts) == 2 and (parts[0] or parts[1]):
        return Token(parts[0], parts[1])
    raise InvalidSearch(
        f"{parameter}={text!r} is not a token: give code, system|code, |code or system|",
        parameter,
    )


def _split(text: str, separator: str) -> list[str]:
    r"""Split on a separator not escaped with a backslash (FHIR escapes `\,` `\|` `\$` `\\`);
    escapes stay in the parts, for a later split on another separator, until _unescape."""
    parts, start, index = [], 0, 0
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == separator:
            parts.append(text[start:index])
            start = index + 1
        index += 1
    parts.append(text[start:])
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _patient(values: list[tuple[str, str]]) -> str | None:
    """The patient id of `patient`/`subject` values: `Patient/<id>`, a URL ending so, or `<id>`."""
    ids = set()
    for parameter, value in values:
        head, slash, tail = value.rpartition("/")
        if (slash and not head.endswith("Patient")) or not tail:
            raise InvalidSearch(
                f"{parameter}={value!r} is not a patient reference: give Patient/<id> or <id>",
                parameter,
            )
        ids.add(tail)
    if len(ids) > 1:
        raise InvalidSearch("patient/subject name two patients: give one", values[-1][0])
    return ids.pop() if ids else None


def _single_int(parameter: str, values: list[str] | None, default: int) -> int:
    if not values:
        return default
    if len(values) > 1 or not values[0].isdigit() or not values[0].isascii():
        raise InvalidSearch(
            f"{parameter}={','.join(values)!r}: give one whole number, 0 or more", parameter
        )
    return int(values[0])


def _sort(values: list[str] | None) -> str | None:
    if not values:
        return None
    if len(values) > 1 or values[0] not in SORTS:
        raise InvalidSearch(f"_sort={','.join(values)!r}: give one of {', '.join(SORTS)}", "_sort")
    return values[0]
