"""`medchain notifications`: what a patient (or their proxy) should know happened to
their data, read from the chain: records written for them by others, proxies they
named, and every break-glass on their emergency set."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from medchain.app import AuditAction, Role
from medchain.cli._common import Chain, address_arg, console, load_key_file, on_chain, show_address
from medchain.cli._options import key_option
from medchain.client import ChainBackend, EmergencyChain
from medchain.types import MedchainError


@dataclass(frozen=True, slots=True, order=True)
class Notice:
    height: int
    text: str


def _record_notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    """A record (or a version) someone else wrote for the patient."""
    notices = []
    for record_id in chain.patient_records(patient):
        record = chain.record(record_id)
        kind = record.resource_type if record is not None else "record"
        for entry in chain.audit(record_id):
            if entry.actor == patient or entry.action not in (
                AuditAction.CREATED,
                AuditAction.VERSIONED,
            ):
                continue
            by = show_address(entry.actor)
            if entry.on_behalf:
                by += " (your proxy)"
            what = "new record" if entry.action is AuditAction.CREATED else "new version"
            notices.append(Notice(entry.height, f"{what} {record_id.hex()} ({kind}) by {by}"))
    return notices


def _proxy_notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    return [
        Notice(
            p.added_height,
            f"proxy {show_address(p.proxy)} added as {p.relation.value} "
            f"({','.join(s.value for s in p.scopes)})",
        )
        for p in chain.proxies_of(patient)
    ]


def _emergency_notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    """Every break-glass opening of the patient's set and every answer to one."""
    if not isinstance(chain, EmergencyChain):
        return []
    found = []
    for note in chain.notifications_of(patient):
        request = note.request_id.hex()
        if note.kind == "emergency.opened":
            text = (
                f"break-glass: {show_address(note.actor)} ({note.org_id}) opened your "
                f"emergency set, request {request}: {note.detail!r}"
            )
        else:
            text = f"break-glass: {note.org_id} answered request {request} ({note.detail})"
        found.append(Notice(note.height, text))
    return found


def notices(chain: ChainBackend, patient: bytes) -> list[Notice]:
    """The patient's feed, oldest first."""
    return sorted(
        [
            *_record_notices(chain, patient),
            *_proxy_notices(chain, patient),
            *_emergency_notices(chain, patient),
        ]
    )


@on_chain
def notifications(
    where: Chain,
    key: Annotated[
        Path | None, key_option("Your key file: the patient's (or give --patient).")
    ] = None,
    patient: Annotated[
        str | None, typer.Option(help="The patient whose feed to show (you act for them).")
    ] = None,
) -> None:
    """What happened to a patient's data: records written for them, proxies named,
    break-glass openings of their emergency set and each organisation's answer."""
    if patient is not None:
        owner = address_arg(patient)
    elif key is not None:
        owner = load_key_file(key).address
    else:
        raise MedchainError("give --key with the patient's key file, or --patient ADDRESS")
    with where.backend() as chain:
        identity = chain.identity(owner)
        if identity is None or identity.role is not Role.PATIENT:
            raise MedchainError(f"{show_address(owner)} is not a patient on this chain")
        feed = notices(chain, owner)
    for notice in feed:
        console.print(f"block {notice.height:>8}  {notice.text}")
    if not feed:
        console.print("nothing yet")
