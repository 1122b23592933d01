"""`medchain reading list`: a patient, or a reader they shared their vitals with, lists
and decrypts a patient's device readings over a time range (medchain.gateway.read_vitals)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medchain.cli._common import (
    address_arg,
    console,
    load_key_file,
    open_backend,
    reports_errors,
    show_address,
)
from medchain.cli._options import DEFAULT_NODE, DataOption, NodeOption, ReadPurposeOption
from medchain.gateway import (
    TIME_FORMS,
    VitalReadings,
    parse_time,
    read_vitals,
    show_time,
    vitals_json,
)


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
        str, typer.Option("--from", help=f"Start of the range (included): {TIME_FORMS}.")
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
    purpose: ReadPurposeOption = None,
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
        readings = read_vitals(keys, chain, who, start, end, device_raw, purpose)
    if as_json:
        body = vitals_json(readings, who, start, end, device)
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
