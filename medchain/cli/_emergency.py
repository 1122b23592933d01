"""`medchain emergency …`: break-glass. A patient sets their emergency policy; a
credentialed clinician opens a patient's emergency set with a reason; each member
organisation's account answers with its share (`serve`); once enough have, the
clinician reads the set; everyone can list the openings of a patient or by an
organisation's staff."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from medchain.app import REQUEST_ID_SIZE, EmergencyRequest
from medchain.cli._common import (
    Chain,
    address_arg,
    console,
    err_console,
    hex_id_arg,
    ok,
    on_chain,
    patient_arg,
    show_address,
    show_expiry,
)
from medchain.cli._options import MAX_SECONDS, AddressArg, KeyOption, key_option
from medchain.client import (
    ChainBackend,
    EmergencyChain,
    answer_pending,
    open_emergency,
    opt_out_of_emergency,
    read_emergency_set,
    set_up_emergency_policy,
)
from medchain.types import MedchainError

MAX_THRESHOLD = 64


def request_id_arg(text: str) -> bytes:
    return hex_id_arg(
        text[:80],
        REQUEST_ID_SIZE,
        f"a request id ({2 * REQUEST_ID_SIZE} hex characters, as `medchain emergency open` "
        "and `list` print it)",
    )


def _types(text: str) -> tuple[str, ...]:
    types = tuple(sorted({t.strip() for t in text.split(",") if t.strip()}))
    if not types or not all(t.isascii() and t.isalpha() for t in types):
        raise MedchainError(
            f"--types {text[:80]!r}: give FHIR resource types separated by commas, e.g. "
            "AllergyIntolerance,Condition"
        )
    return types


@on_chain
def emergency_policy(
    where: Chain,
    key: Annotated[Path, key_option("Your key file: the patient's, or their grant proxy's.")],
    off: Annotated[bool, typer.Option("--off", help="Opt out: no emergency set at all.")] = False,
    types: Annotated[
        str | None,
        typer.Option(
            help="Resource types in the set, comma-separated (default: allergies, "
            "conditions, immunizations, medications, blood group)."
        ),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option(min=2, max=MAX_THRESHOLD, help="Organisations needed (default ⌈2n/3⌉)."),
    ] = None,
    patient: Annotated[
        str | None, typer.Option(help="The patient you act for as their grant proxy.")
    ] = None,
) -> None:
    """Turn break-glass on (a new emergency key split among the member organisations),
    or off with --off."""
    if off and (types is not None or threshold is not None):
        raise MedchainError("--off takes neither --types nor --threshold")
    whose = address_arg(patient) if patient is not None else None
    with where.client(key) as client:
        if off:
            opt_out_of_emergency(client, whose)
            ok("break-glass is off: no emergency set can be opened")
            return
        chosen = _types(types) if types is not None else None
        if chosen is None:
            set_up_emergency_policy(client, threshold, patient=whose)
        else:
            set_up_emergency_policy(client, threshold, chosen, whose)
        policy = client.chain.emergency_policy(whose or client.address)
    assert policy is not None
    ok(
        f"break-glass is on: {policy.threshold} of {len(policy.shares)} organisations open "
        f"{', '.join(policy.resource_types)}"
    )


@on_chain
def emergency_open(
    where: Chain,
    patient: AddressArg,
    key: KeyOption,
    reason: Annotated[str, typer.Option(help="Why: on chain, and shown to the patient.")],
) -> None:
    """Clinician: open a patient's emergency set; prints the request's id."""
    if not reason.strip():
        raise MedchainError("--reason is empty; say why, e.g. 'unconscious in the ER'")
    with where.client(key) as client:
        request_id = open_emergency(client, patient_arg(client.chain, patient), reason)
        request = emergency_lists(client.chain).emergency_request(request_id)
    assert request is not None
    ok(
        f"emergency set of {patient} opened ({len(request.items)} record versions); "
        f"{request.threshold} organisations must answer, {show_expiry(request.expires_ms)}"
    )
    console.print(request_id.hex())


def _request_line(request: EmergencyRequest) -> str:
    return (
        f"{request.request_id.hex()}  block {request.opened_height}  patient "
        f"{show_address(request.patient)}  by {show_address(request.clinician)} "
        f"({request.clinician_org})  {request.reason!r}  "
        f"{len(request.answered)}/{request.threshold} answered  {show_expiry(request.expires_ms)}"
    )


def _requests(chain: ChainBackend, patient: str | None, org: str | None) -> list[EmergencyRequest]:
    if (patient is None) == (org is None):
        raise MedchainError("give --patient ADDRESS or --org ORG_ID")
    lists = emergency_lists(chain)
    if patient is not None:
        return lists.emergency_requests_of(patient_arg(chain, patient))
    assert org is not None
    if chain.organisation(org) is None:
        raise MedchainError(f"no organisation {org!r} on this chain; `medchain org list`")
    return lists.emergency_requests_by_org(org)


def emergency_lists(chain: ChainBackend) -> EmergencyChain:
    """The chain's break-glass queries (a LocalChain's, or a node's over HTTP)."""
    if not isinstance(chain, EmergencyChain):
        raise MedchainError("this chain backend answers no break-glass queries")
    return chain


@on_chain
def emergency_list(
    where: Chain,
    patient: Annotated[
        str | None, typer.Option(help="Every opening of this patient's set.")
    ] = None,
    org: Annotated[
        str | None, typer.Option(help="Every opening by this organisation's staff.")
    ] = None,
) -> None:
    """Break-glass openings, for a patient or by an organisation's staff (for review)."""
    with where.backend() as chain:
        found = _requests(chain, patient, org)
    for request in found:
        console.print(_request_line(request))
    if not found:
        console.print("no break-glass")


@on_chain
def emergency_serve(
    where: Chain,
    key: Annotated[Path, key_option("The organisation account's key file (org.key).")],
    once: Annotated[
        bool, typer.Option("--once", help="Answer what is pending, then stop.")
    ] = False,
    interval: Annotated[
        float, typer.Option(min=0.1, max=MAX_SECONDS, help="Seconds between polls.")
    ] = 2.0,
) -> None:
    """Organisation: answer every valid emergency request holding our share, until
    stopped (Ctrl-C), or once with --once."""
    with where.client(key) as client:
        while True:
            for request_id in answer_pending(client):
                ok(f"answered emergency request {request_id.hex()}")
            if once:
                return
            try:
                time.sleep(interval)
            except KeyboardInterrupt:
                err_console.print("stopped")
                return


@on_chain
def emergency_read(
    where: Chain,
    request_id: Annotated[str, typer.Argument(help="The request's id (hex).")],
    key: KeyOption,
) -> None:
    """Clinician: the records of the emergency set you opened, once enough
    organisations answered."""
    raw = request_id_arg(request_id)
    with where.client(key) as client:
        records = read_emergency_set(client, raw)
    for record in records:
        console.print(f"record {record.record_id.hex()} version {record.version}")
        console.print_json(json.dumps(record.resource))
