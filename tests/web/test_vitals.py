"""The vitals page's data: the time range a query names (a day, a week, a month, or
days of one's own, refused with a clear message when it cannot be shown), and a
patient's readings sent by a device through a gateway, read back and charted; a
reader the patient has not shared their vitals with is told so."""

from __future__ import annotations

import pytest

from medchain.app import MAX_VITALS_QUERY_DAYS
from medchain.client import HttpChain
from medchain.gateway import CheckedBundles
from medchain.web._vitals import BadRange, vitals, vitals_range
from medchain.web._vitals_chart import DAY_MS
from tests.web.conftest import Ward
from tests.web.wearer import MINUTE_MS, hours_ago, send_readings, sent_values, wear_device

NOW = 1_714_564_800_000  # 2024-05-01T12:00:00Z


@pytest.mark.parametrize("choice,days", [("day", 1), ("week", 7), ("month", 30)])
def test_a_named_range_ends_now(choice: str, days: int) -> None:
    span = vitals_range({"range": choice}, NOW)
    assert (span.choice, span.to_ms, span.to_ms - span.from_ms + 1) == (choice, NOW, days * DAY_MS)
    assert span.last_day == "2024-05-01"


def test_no_range_or_an_unknown_one_is_the_last_day() -> None:
    for query in ({}, {"range": "year"}):
        span = vitals_range(query, NOW)
        assert (span.choice, span.from_ms, span.to_ms) == ("day", NOW - DAY_MS + 1, NOW)


def test_a_custom_range_is_whole_days() -> None:
    span = vitals_range({"range": "custom", "from": "2024-04-01", "to": "2024-04-02"}, NOW)
    assert span.from_ms == 1_711_929_600_000  # 2024-04-01T00:00:00Z
    assert span.to_ms == span.from_ms + 2 * DAY_MS - 1
    assert (span.first_day, span.last_day) == ("2024-04-01", "2024-04-02")


@pytest.mark.parametrize(
    "first,last,message",
    [
        ("", "2024-04-02", "needs both dates"),
        ("April", "2024-04-02", "as dates, e.g. 2024-05-01"),
        ("2024-04-02", "2024-04-01", "comes before the first"),
        ("2023-01-01", "2024-04-01", f"at most {MAX_VITALS_QUERY_DAYS} days"),
    ],
)
def test_a_custom_range_that_cannot_be_shown_is_refused(
    first: str, last: str, message: str
) -> None:
    with pytest.raises(BadRange, match=message):
        vitals_range({"range": "custom", "from": first, "to": last}, NOW)


def test_readings_sent_through_a_gateway_are_charted(ward: Ward) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = wear_device(ward, chain)
        sent = send_readings(chain, band, 30, hours_ago(3), every_ms=MINUTE_MS)
    span = vitals_range({"range": "day"}, hours_ago(0))
    found = vitals(ward.client(ward.patient), ward.patient.address, span)
    assert (found.readings, found.unreadable, found.note) == (30, 0, "")
    (chart,) = found.charts
    assert (chart.title, chart.unit, chart.readings) == ("Heart rate", "/min", 30)
    values = sent_values(sent)
    assert min(b.low for b in chart.buckets) == min(values)
    assert max(b.high for b in chart.buckets) == max(values)
    stranger = vitals(ward.client(ward.stranger), ward.patient.address, span)
    assert stranger.charts == () and "has not shared their vitals" in stranger.note


def test_a_chart_viewed_again_is_drawn_as_a_full_check_draws_it(ward: Ward) -> None:
    with HttpChain(ward.node.url, timeout_s=30) as chain:
        band = wear_device(ward, chain)
        send_readings(chain, band, 90, hours_ago(5), every_ms=2 * MINUTE_MS)
    span = vitals_range({"range": "day"}, hours_ago(0))
    client, patient = ward.client(ward.patient), ward.patient.address
    checked = CheckedBundles()
    full = vitals(client, patient, span)
    assert vitals(client, patient, span, checked) == full  # checked now, and kept
    assert checked.readings == 90
    assert vitals(client, patient, span, checked) == full  # taken from what was kept
    assert full.readings == 90 and sum(b.count for b in full.charts[0].buckets) == 90
    stranger = vitals(ward.client(ward.stranger), patient, span, checked)
    assert stranger.charts == () and "has not shared their vitals" in stranger.note
