"""`medchain reading list`: a patient, or a reader they shared their vitals with, lists
and decrypts a patient's device readings over a time range (medchain.gateway.read_vitals)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from medchain.app import MS_PER_DAY
from medchain.cli._common import (
    address_arg,
    console,
    load_key_file,
    open_backend,
    reports_errors,
    show_address,
)
from medchain.cli._options import DEFAULT_NODE, DataOption, NodeOption
from medchain.gateway import VitalReading, VitalReadings, read_vitals
from medchain.types import MedchainError

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME_HELP = (
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
            f"{text!r} is not a time; give {_TIME_HELP}, e.g. 2024-05-01T08:00:00Z"
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


def reading_json(reading: VitalReading) -> dict[str, Any]:
    return {
        "time": show_time(reading.time_ms),
        "time_ms": reading.time_ms,
        "device": show_address(reading.device),
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


def readings_table(readings: VitalReadings, title: str) -> Table:
    table = Table(title=title)
    table.add_column("time", no_wrap=True)
    table.add_column("device", no_wrap=True)
    for name in ("measurement", "value", "unit"):
        table.add_column(name)
    table.add_column("reading id", overflow="fold")  # whole: `medchain reading prove` takes it
    for r in readings:
        table.add_row(
            show_time(r.time_ms),
            show_address(r.device),
            r.measurement,
            r.value_text,
            r.unit,
            r.reading_id.hex(),
        )
    return table


@reports_errors
def reading_list(
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            help="Your key file: the patient's, a guardian's, or a reader's the patient "
            "shares their vitals with (`medchain devices share-vitals`).",
            dir_okay=False,
        ),
    ],
    from_: Annotated[
        str, typer.Option("--from", help=f"Start of the range (included): {_TIME_HELP}.")
    ],
    to: Annotated[
        str,
        typer.Option(
            "--to", help="End of the range (included; a date means its whole day): same forms."
        ),
    ],
    patient: Annotated[
        str | None,
        typer.Option("--patient", help="The patient's address; yours by default."),
    ] = None,
    device: Annotated[
        str | None, typer.Option("--device", help="Only this device's readings.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the readings as JSON.")] = False,
    node: NodeOption = DEFAULT_NODE,
    data: DataOption = None,
) -> None:
    """List and decrypt a patient's device readings over a time range (at most a year),
    oldest first."""
    start, end = parse_time(from_, end=False), parse_time(to, end=True)
    keys = load_key_file(key)
    who = keys.address if patient is None else address_arg(patient)
    device_raw = None if device is None else address_arg(device)
    with open_backend(node, data) as chain:
        readings = read_vitals(keys, chain, who, start, end, device_raw)
    if as_json:
        body = {
            "patient": show_address(who),
            "from_ms": start,
            "to_ms": end,
            "device": device,
            "readings": [reading_json(r) for r in readings],
            "unreadable_bundles": readings.unreadable,
        }
        typer.echo(json.dumps(body, indent=2))
        return
    span = f"{show_time(start)} to {show_time(end)}"
    if readings:
        console.print(readings_table(readings, f"readings of {show_address(who)}, {span}"))
    else:
        console.print(f"no readings of {show_address(who)} from {span}", highlight=False)
    if readings.unreadable:
        console.print(
            f"[dim]{readings.unreadable} bundle(s) in this range were committed before the "
            "patient shared their vitals with you and stay closed to you[/]"
        )
