"""`medchain notifications`: what a patient (or their proxy) should know happened to
their data (the client's `notices`: records written for them by others, proxies they
named, every break-glass on their emergency set), printed a line a notice."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medchain.app import Role
from medchain.cli._common import Chain, address_arg, console, load_key_file, on_chain, show_address
from medchain.cli._options import key_option
from medchain.client import (
    EMERGENCY_OPENED,
    PROXY_ADDED,
    RECORD_CREATED,
    RECORD_VERSIONED,
    Notice,
    notices,
)
from medchain.types import MedchainError


def notice_text(notice: Notice) -> str:
    """A notice in words, addresses as `mc1…`."""
    if notice.kind in (RECORD_CREATED, RECORD_VERSIONED):
        what = "new record" if notice.kind == RECORD_CREATED else "new version"
        by = show_address(notice.actor) + (" (your proxy)" if notice.by_proxy else "")
        return f"{what} {notice.subject.hex()} ({notice.detail}) by {by}"
    if notice.kind == PROXY_ADDED:
        scopes = ",".join(notice.scopes)
        return f"proxy {show_address(notice.actor)} added as {notice.detail} ({scopes})"
    request = notice.subject.hex()
    if notice.kind == EMERGENCY_OPENED:
        return (
            f"break-glass: {show_address(notice.actor)} ({notice.org_id}) opened your "
            f"emergency set, request {request}: {notice.detail!r}"
        )
    return f"break-glass: {notice.org_id} answered request {request} ({notice.detail})"


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
        feed = sorted((n.height, notice_text(n)) for n in notices(chain, owner))
    for height, text in feed:
        console.print(f"block {height:>8}  {text}")
    if not feed:
        console.print("nothing yet")
