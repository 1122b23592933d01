"""`medchain consent …`: standing consents (grant, revoke, list, export and import as
FHIR R4 Consent), and `medchain record set-terms`; the purposes and expiries that
`record grant` takes are parsed here too."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from medchain.app import MS_PER_DAY, PURPOSE_DISPLAY, PurposeOfUse, StandingConsent
from medchain.cli._common import (
    Chain,
    address_arg,
    console,
    ok,
    on_chain,
    record_id_arg,
    show_address,
    show_expiry,
)
from medchain.cli._options import MAX_INT, AddressArg, KeyOption, PatientKeyOption, key_option
from medchain.cli._proxies import own_address
from medchain.client import ConsentGrant, consent_from_fhir, consent_to_fhir
from medchain.types import MedchainError

PURPOSES = ", ".join(p.value for p in PurposeOfUse)
_DURATION = re.compile(r"^(\d{1,6})([dh])$")
_UNIT_MS = {"d": MS_PER_DAY, "h": 3_600_000}

PurposeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--purpose",
        help=f"A purpose of use (repeatable; none: TREAT). One of {PURPOSES}.",
        show_default=False,
    ),
]
ExpiresOption = Annotated[
    str | None,
    typer.Option(
        help="Until when: an ISO date (through that day, UTC), an ISO date-time, or a "
        "duration from now such as 30d or 12h (none: never)."
    ),
]


def purposes_arg(texts: list[str] | None) -> tuple[PurposeOfUse, ...]:
    """`--purpose` values as purposes of use, sorted, each once."""
    found = set()
    for text in texts or ():
        try:
            found.add(PurposeOfUse(text.strip().upper()))
        except ValueError:
            raise MedchainError(f"--purpose {text!r}: choose among {PURPOSES}") from None
    return tuple(sorted(found))


def expires_arg(text: str | None) -> int:
    """`--expires` as block time in ms (0: never)."""
    if text is None:
        return 0
    duration = _DURATION.match(text.strip())
    if duration:
        return time.time_ns() // 1_000_000 + int(duration[1]) * _UNIT_MS[duration[2]]
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise MedchainError(
            f"--expires {text!r}: give an ISO date (2027-01-31), date-time "
            "(2027-01-31T12:00:00Z) or a duration (30d, 12h)"
        ) from None
    if len(text.strip()) == 10:  # a date: through that day
        moment = moment.replace(tzinfo=UTC) + timedelta(days=1)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def _show_purposes(purposes: tuple[PurposeOfUse, ...]) -> str:
    return ", ".join(f"{p.value} ({PURPOSE_DISPLAY[p]})" for p in purposes)


@on_chain
def record_set_terms(
    where: Chain,
    key: KeyOption,
    record_id: str,
    reader: Annotated[str, typer.Option(help="The reader whose terms change.")],
    purpose: PurposeOption = None,
    expires: ExpiresOption = None,
) -> None:
    """Owner (or their `grant` proxy): change what a reader may read a record for, and
    until when (renew an expiry before it strikes, or shorten it)."""
    purposes, expires_ms = purposes_arg(purpose), expires_arg(expires)
    with where.client(key) as client:
        client.set_terms(record_id_arg(record_id), address_arg(reader), purposes, expires_ms)
    shown = _show_purposes(purposes) or "TREAT (treatment)"
    ok(f"{reader} reads {record_id} for {shown}, {show_expiry(expires_ms)}")


def _consent_line(consent: StandingConsent) -> str:
    types = ",".join(consent.resource_types) or "every type"
    codes = f" codes {','.join(consent.codes)}" if consent.codes else ""
    by = [*(show_address(a) for a in consent.authors), *consent.organisations]
    authors = f" by {','.join(by)}" if by else ""
    status = (
        f"revoked at height {consent.revoked_height}"
        if consent.revoked_height
        else (show_expiry(consent.expires_ms))
    )
    purposes = ",".join(p.value for p in consent.purposes)
    return (
        f"{consent.consent_id}  {show_address(consent.reader)}  {types}{codes}{authors}  "
        f"{purposes}  {status}"
    )


@on_chain
def consent_grant(
    where: Chain,
    reader: AddressArg,
    key: PatientKeyOption,
    resource_type: Annotated[
        list[str] | None,
        typer.Option("--type", help="A FHIR resource type (repeatable; none: all)."),
    ] = None,
    code: Annotated[
        list[str] | None,
        typer.Option(
            help="A code as system|code (repeatable; none: all), e.g. http://loinc.org|4548-4."
        ),
    ] = None,
    author: Annotated[
        list[str] | None, typer.Option(help="Only records by this author (repeatable).")
    ] = None,
    org: Annotated[
        list[str] | None,
        typer.Option(help="Only records by staff of this organisation (repeatable)."),
    ] = None,
    purpose: PurposeOption = None,
    expires: ExpiresOption = None,
    patient: Annotated[
        str | None, typer.Option(help="The patient you grant for as their `grant` proxy.")
    ] = None,
) -> None:
    """Let READER read all your records of the given types and codes, by the given
    authors or organisations, present and future. Your past records it covers are
    opened to it now; later ones are wrapped for it by whoever writes them."""
    purposes, expires_ms = purposes_arg(purpose), expires_arg(expires)
    with where.client(key) as client:
        granted = client.grant_consent(
            address_arg(reader),
            resource_type or (),
            code or (),
            [address_arg(a) for a in author or ()],
            org or (),
            purposes,
            expires_ms,
            address_arg(patient) if patient else None,
        )
    _report(granted)


def _report(granted: ConsentGrant) -> None:
    ok(f"standing consent {granted.consent.consent_id}: {_consent_line(granted.consent)}")
    reader = show_address(granted.consent.reader)
    console.print(f"{len(granted.rewrapped)} past records opened to {reader}")
    if granted.skipped:
        console.print(
            f"{len(granted.skipped)} records this key cannot open were left for the patient "
            "to open (`medchain consent grant` again with the patient's key re-wraps them)"
        )


@on_chain
def consent_revoke(
    where: Chain,
    consent_id: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="The consent's id.")],
    key: PatientKeyOption,
) -> None:
    """End a standing consent: later records are no longer wrapped for its reader
    (records already opened to it stay so until revoked one by one)."""
    with where.client(key) as client:
        client.revoke_consent(consent_id)
    ok(f"standing consent {consent_id} revoked")


@on_chain
def consent_list(
    where: Chain,
    patient: Annotated[str | None, typer.Option(help="Whose consents (default: yours).")] = None,
    key: Annotated[Path | None, key_option("Your key file, to list your own consents.")] = None,
) -> None:
    """A patient's standing consents, revoked and expired ones too."""
    owner = address_arg(patient) if patient is not None else own_address(key)
    with where.backend() as chain:
        found = chain.consents_of(owner)
    for consent in found:
        console.print(_consent_line(consent))
    if not found:
        console.print(f"{show_address(owner)} has given no standing consent")


@on_chain
def consent_export(
    where: Chain,
    consent_id: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="The consent's id.")],
    out: Annotated[
        Path | None,
        typer.Option(help="Write the FHIR JSON here (default: print it).", dir_okay=False),
    ] = None,
) -> None:
    """A standing consent as a FHIR R4 Consent resource (JSON)."""
    with where.backend() as chain:
        found = chain.consent(consent_id)
    if found is None:
        raise MedchainError(f"no standing consent {consent_id}; `medchain consent list` shows them")
    text = json.dumps(consent_to_fhir(found), indent=2)
    if out is None:
        console.print_json(text)
        return
    out.write_text(text + "\n")
    ok(f"standing consent {consent_id} written to {out}")


@on_chain
def consent_import(
    where: Chain,
    file: Annotated[Path, typer.Argument(help="A FHIR R4 Consent (JSON).", dir_okay=False)],
    key: PatientKeyOption,
) -> None:
    """Grant the standing consent a FHIR R4 Consent describes (for its patient: you, or
    the patient you are the `grant` proxy of)."""
    try:
        text = file.read_text()
    except OSError as exc:
        raise MedchainError(f"cannot read {file}: {exc.strerror}") from None
    args = consent_from_fhir(text)
    with where.client(key) as client:
        _report(client.grant_consent_as(args))
