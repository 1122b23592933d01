"""The vitals page's data: the time range the patient chose (the last day, week or
month, or dates of their own) and their devices' readings over it, read back through
the gateway's `read_vitals` (fetched, checked against the chain and decrypted here;
the bundles checked on an earlier view are remembered, not checked again) and charted
by `_vitals_chart`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from medchain.app import MAX_VITALS_QUERY_DAYS
from medchain.client import MedchainClient, NotAReader
from medchain.gateway import CheckedBundles, parse_time, read_vitals
from medchain.types import MedchainError
from medchain.web._vitals_chart import DAY_MS, Chart, charts, falls

RANGES = {"day": 1, "week": 7, "month": 30}
"""The ranges offered by name, in days back from now."""


class BadRange(MedchainError):
    """A custom range the page cannot show; the message says how to fix it."""


@dataclass(frozen=True)
class VitalsRange:
    choice: str
    """"day", "week", "month" or "custom"."""
    from_ms: int
    to_ms: int
    first_day: str
    """The range's dates as a date input shows them (YYYY-MM-DD), to fill the form."""
    last_day: str


def vitals_range(query: Mapping[str, str], now_ms: int) -> VitalsRange:
    """The range a query asks for: `range` one of RANGES up to `now_ms` (a day by
    default), or "custom" from the date `from` to the date `to`, both whole days."""
    choice = query.get("range", "day")
    if choice != "custom":
        days = RANGES.get(choice, 1)
        start = now_ms - days * DAY_MS + 1
        return VitalsRange(
            choice if choice in RANGES else "day", start, now_ms, _day(start), _day(now_ms)
        )
    first, last = query.get("from", "").strip(), query.get("to", "").strip()
    if not first or not last:
        raise BadRange("a custom range needs both dates: choose a first and a last day")
    try:
        from_ms, to_ms = parse_time(first), parse_time(last, end=True)
    except MedchainError:
        raise BadRange("give the range's days as dates, e.g. 2024-05-01") from None
    if to_ms < from_ms:
        raise BadRange("the last day comes before the first; swap them")
    if to_ms - from_ms >= MAX_VITALS_QUERY_DAYS * DAY_MS:
        raise BadRange(f"choose at most {MAX_VITALS_QUERY_DAYS} days at a time")
    return VitalsRange("custom", from_ms, to_ms, _day(from_ms), _day(to_ms))


@dataclass(frozen=True)
class Vitals:
    span: VitalsRange
    charts: tuple[Chart, ...]
    falls: tuple[str, ...]
    readings: int
    unreadable: int
    """Bundles in the range not sealed for this account (shared with it later)."""
    note: str = ""


def vitals(
    client: MedchainClient,
    patient: bytes,
    span: VitalsRange,
    checked: CheckedBundles | None = None,
) -> Vitals:
    """`patient`'s readings over `span`, decrypted with this account's key and charted;
    `checked` remembers the bundles checked, for the next view."""
    try:
        found = read_vitals(
            client.keys, client.chain, patient, span.from_ms, span.to_ms, checked=checked
        )
    except NotAReader:
        note = "The patient has not shared their vitals with you."
        return Vitals(span, (), (), 0, 0, note)
    drawn = charts(found, span.from_ms, span.to_ms)
    return Vitals(span, tuple(drawn), tuple(falls(found)), len(found), found.unreadable)


def _day(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")
