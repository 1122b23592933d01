"""`medchain anon …`: anonymous contributions signed by a ring of registered members."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medchain.cli._common import (
    DEFAULT_NODE,
    DataOption,
    KeyOption,
    NodeOption,
    client_for,
    console,
    ok,
    reports_errors,
    role_arg,
)
from medchain.client import (
    DEFAULT_RING_SIZE,
    anon_submit,
    close_scope,
    contributions,
    open_scope,
)
from medchain.crypto import MAX_RING_SIZE
from medchain.types import MedchainError

SMALLEST_RING = 2
"""A ring of one would name its signer; the chain refuses it too."""

anon_app = typer.Typer(
    help="Anonymous contributions (linkable ring signatures).", no_args_is_help=True
)


@anon_app.command("open")
@reports_errors
def anon_open(
    key: KeyOption,
    scope: Annotated[str, typer.Option(help="Name of the data set or channel.")],
    member_role: Annotated[str, typer.Option(help="Who may contribute.")] = "patient",
    min_ring: Annotated[
        int, typer.Option(min=SMALLEST_RING, max=MAX_RING_SIZE, help="Smallest ring accepted.")
    ] = DEFAULT_RING_SIZE,
    node: NodeOption = DEFAULT_NODE,
    data: DataOption = None,
) -> None:
    """Institution: open a scope that members of a role may contribute to anonymously."""
    with client_for(key, node, data) as client:
        open_scope(client, scope, role_arg(member_role), min_ring)
    ok(f"scope {scope!r} open to {member_role}s, rings of at least {min_ring}")


@anon_app.command("close")
@reports_errors
def anon_close(
    key: KeyOption,
    scope: Annotated[str, typer.Option(help="Scope to close.")],
    node: NodeOption = DEFAULT_NODE,
    data: DataOption = None,
) -> None:
    """Institution: stop accepting contributions."""
    with client_for(key, node, data) as client:
        close_scope(client, scope)
    ok(f"scope {scope!r} closed")


@anon_app.command("submit")
@reports_errors
def anon_submit_cmd(
    key: KeyOption,
    scope: Annotated[str, typer.Option(help="Scope to contribute to.")],
    file: Annotated[Path, typer.Option("--file", help="FHIR R4 resource (JSON).", dir_okay=False)],
    ring_size: Annotated[
        int,
        typer.Option(
            min=SMALLEST_RING, max=MAX_RING_SIZE, help="Members in the ring (you among them)."
        ),
    ] = DEFAULT_RING_SIZE,
    node: NodeOption = DEFAULT_NODE,
    data: DataOption = None,
) -> None:
    """Contribute a de-identified copy of a resource, signed by a ring: nobody can tell
    which member sent it, and each member can contribute once per scope."""
    try:
        resource = file.read_bytes()
    except OSError as exc:
        raise MedchainError(f"cannot read {file}: {exc.strerror}") from exc
    with client_for(key, node, data) as client:
        identity = anon_submit(client, scope, resource, ring_size)
    ok(f"contributed anonymously to {scope!r} (transaction {identity.hex()})")


@anon_app.command("list")
@reports_errors
def anon_list(
    key: KeyOption,
    scope: Annotated[str, typer.Option(help="Your scope.")],
    node: NodeOption = DEFAULT_NODE,
    data: DataOption = None,
) -> None:
    """Institution: the contributions to a scope, decrypted (no contributor shown)."""
    with client_for(key, node, data) as client:
        found = contributions(client, scope)
    console.print_json(
        json.dumps(
            [
                {"index": c.entry.index, "ring_size": len(c.entry.ring), "resource": c.resource}
                for c in found
            ]
        )
    )
