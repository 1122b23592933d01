"""`medchain record erase RECORD_ID`: the patient (or their `grant` proxy) erases a
record, after confirming; and how `record show` and `record list` mark one erased."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from medchain.app import MAX_ERASE_REASON_CHARS, Record
from medchain.cli._common import Chain, console, ok, on_chain, record_id_arg, show_address
from medchain.cli._options import KeyOption
from medchain.client import erased_on
from medchain.types import MedchainError


@on_chain
def record_erase(
    where: Chain,
    key: KeyOption,
    record_id: str,
    reason: Annotated[
        str, typer.Option(help=f"Why (optional, public, at most {MAX_ERASE_REASON_CHARS} chars).")
    ] = "",
    yes: Annotated[bool, typer.Option("--yes", help="Erase without asking to confirm.")] = False,
) -> None:
    """Owner, or their `grant` proxy: erase a record. Every node deletes its ciphertexts
    and nobody can read it again; it cannot be undone (docs/PRIVACY.md, "Erasure")."""
    raw = record_id_arg(record_id)
    with where.client(key) as client:
        client.record(raw)  # an unknown or erased record is refused before asking
        if not yes:
            _confirm(record_id)
        client.erase(raw, reason)
    ok(f"record {record_id} erased")


def on_a_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm(record_id: str) -> None:
    """Ask on a terminal; elsewhere (a script, a pipe) refuse unless --yes was given."""
    if not on_a_terminal():
        raise MedchainError(
            "erasing a record cannot be undone, so `medchain record erase` asks to confirm "
            "on a terminal; run it on one, or pass --yes"
        )
    typer.confirm(
        f"Erase record {record_id} for good? Every node deletes its content; "
        "what readers already opened stays with them",
        abort=True,
    )


def show_erased(record: Record) -> None:
    """`record show`'s line saying when and by whom the record was erased, if it was."""
    if record.erased_height:
        by = show_address(record.erased_by)
        console.print(f"erased:   {erased_on(record)} (height {record.erased_height}) by {by}")
