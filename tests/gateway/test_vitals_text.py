"""Readings' times and JSON as people write and read them (medchain.gateway._vitals_text)."""

from __future__ import annotations

import pytest

from medchain.app import MS_PER_DAY
from medchain.crypto import AccountKeys, format_address
from medchain.gateway import (
    VitalKind,
    VitalReading,
    VitalReadings,
    parse_time,
    show_time,
    vitals_json,
)
from medchain.types import MedchainError

MIDNIGHT = 19_845 * MS_PER_DAY  # 2024-05-02T00:00:00Z


def test_parse_time() -> None:
    assert parse_time("1714608000000") == MIDNIGHT
    assert parse_time("2024-05-02T00:00:00Z") == MIDNIGHT
    assert parse_time("2024-05-02T02:00:00+02:00") == MIDNIGHT
    assert parse_time("2024-05-02T00:00:00.250") == MIDNIGHT + 250  # UTC when naive
    assert parse_time("2024-05-02") == MIDNIGHT
    assert parse_time("2024-05-02", end=True) == MIDNIGHT + MS_PER_DAY - 1
    assert parse_time("2024-05-02T00:00:00Z", end=True) == MIDNIGHT
    with pytest.raises(MedchainError, match="is not a time"):
        parse_time("yesterday")
    with pytest.raises(MedchainError, match="before 1970"):
        parse_time("1969-12-31T23:59:59Z")
    assert show_time(MIDNIGHT + 5) == "2024-05-02T00:00:00.005Z"


def test_show_time_beyond_the_calendar_shows_the_milliseconds() -> None:
    assert show_time(2**62) == f"{2**62} ms"


def test_vitals_json_shows_times_and_addresses_beside_the_raw_values() -> None:
    device, patient = AccountKeys.generate().address, AccountKeys.generate().address
    reading = VitalReading(
        reading_id=b"\x01" * 32,
        device=device,
        time_ms=MIDNIGHT + 5,
        sequence=9,
        kind=VitalKind.BLOOD_PRESSURE,
        system="http://loinc.org",
        code="85354-9",
        values=(120.0, 80.0),
        unit="mm[Hg]",
        observation=b"{}",
        batch_id=b"\x02" * 16,
        height=3,
    )
    body = vitals_json(VitalReadings([reading], unreadable=2), patient, 1, 2, None)
    assert body["patient"] == format_address(patient)
    assert (body["from_ms"], body["to_ms"], body["device"]) == (1, 2, None)
    assert body["unreadable_bundles"] == 2
    [shown] = body["readings"]
    assert shown["time"] == "2024-05-02T00:00:00.005Z" and shown["time_ms"] == MIDNIGHT + 5
    assert shown["device"] == format_address(device)
    assert shown["measurement"] == "blood pressure" and shown["sequence"] == 9
    assert shown["values"] == [120.0, 80.0] and shown["value"] == "120/80"
    assert shown["reading_id"] == "01" * 32 and shown["batch_id"] == "02" * 16
