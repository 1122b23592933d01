"""Vital readings as people write and read them: the bounds of a time range (ms since
the Unix epoch, or ISO 8601), a time shown in UTC, and a reading as JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from medchain.app import MS_PER_DAY
from medchain.crypto import format_address
from medchain.gateway._query import VitalReading, VitalReadings
from medchain.types import MedchainError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
TIME_FORMS = (
    "milliseconds since the Unix epoch, or ISO 8601: 2024-05-01T08:00:00Z (UTC when no "
    "zone is given) or a date, 2024-05-01"
)


def parse_time(text: str, *, end: bool = False) -> int:
    """`text` as ms since the Unix epoch: an integer, or ISO 8601 (UTC unless it names a
    zone). A bare date is the start of that UTC day, or with `end` its last millisecond,
    so `--from 2024-05-01 --to 2024-05-01` is the whole day."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise MedchainError(
            f"{text!r} is not a time; give {TIME_FORMS}, e.g. 2024-05-01T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ms = (moment - _EPOCH) // timedelta(milliseconds=1)
    if end and _DATE.fullmatch(text):
        ms += MS_PER_DAY - 1
    if ms < 0:
        raise MedchainError(f"{text!r} is before 1970; readings are timed from 1970 on")
    return ms


def show_time(ms: int) -> str:
    """ISO 8601 in UTC, to the millisecond."""
    try:
        moment = _EPOCH + timedelta(milliseconds=ms)
    except OverflowError:
        return f"{ms} ms"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def vital_reading_json(reading: VitalReading) -> dict[str, Any]:
    """A decrypted reading as JSON: its time both shown and in ms, its device's address."""
    return {
        "time": show_time(reading.time_ms),
        "time_ms": reading.time_ms,
        "device": format_address(reading.device),
        "measurement": reading.measurement,
        "system": reading.system,
        "code": reading.code,
        "value": reading.value_text,
        "values": list(reading.values),
        "unit": reading.unit,
        "reading_id": reading.reading_id.hex(),
        "batch_id": reading.batch_id.hex(),
        "sequence": reading.sequence,
    }


def vitals_json(
    readings: VitalReadings, patient: bytes, from_ms: int, to_ms: int, device: str | None
) -> dict[str, Any]:
    """A patient's readings over a time range (of one `device`, if given) as one JSON
    document, with how many bundles in the range the reader may not open."""
    return {
        "patient": format_address(patient),
        "from_ms": from_ms,
        "to_ms": to_ms,
        "device": device,
        "readings": [vital_reading_json(r) for r in readings],
        "unreadable_bundles": readings.unreadable,
    }
