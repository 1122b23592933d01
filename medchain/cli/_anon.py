"""`medchain anon …`: anonymous contributions signed by a ring of registered members."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from medchain.cli._common import Chain, console, ok, on_chain, role_arg
from medchain.cli._options import FhirFileOption, KeyOption
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


@on_chain
def anon_open(
    where: Chain,
    key: KeyOption,
    scope: Annotated[str, typer.Option(help="Name of the data set or channel.")],
    member_role: Annotated[str, typer.Option(help="Who may contribute.")] = "patient",
    min_ring: Annotated[
        int, typer.Option(min=SMALLEST_RING, max=MAX_RING_SIZE, help="Smallest ring accepted.")
    ] = DEFAULT_RING_SIZE,
    verified_only: Annotated[
        bool,
        typer.Option(
            "--verified-only",
            help="Accept only rings of patients a member organisation attests "
            "(`medchain org attest`): one person cannot fill a ring with their own accounts.",
        ),
    ] = False,
) -> None:
    """Institution: open a scope that members of a role may contribute to anonymously."""
    with where.client(key) as client:
        open_scope(client, scope, role_arg(member_role), min_ring, verified_only=verified_only)
    who = f"verified {member_role}s" if verified_only else f"{member_role}s"
    ok(f"scope {scope!r} open to {who}, rings of at least {min_ring}")


@on_chain
def anon_close(
    where: Chain, key: KeyOption, scope: Annotated[str, typer.Option(help="Scope to close.")]
) -> None:
    """Institution: stop accepting contributions."""
    with where.client(key) as client:
        close_scope(client, scope)
    ok(f"scope {scope!r} closed")


@on_chain
def anon_submit_cmd(
    where: Chain,
    key: KeyOption,
    scope: Annotated[str, typer.Option(help="Scope to contribute to.")],
    file: FhirFileOption,
    ring_size: Annotated[
        int,
        typer.Option(
            min=SMALLEST_RING, max=MAX_RING_SIZE, help="Members in the ring (you among them)."
        ),
    ] = DEFAULT_RING_SIZE,
) -> None:
    """Contribute a de-identified copy of a resource, signed by a ring: nobody can tell
    which member sent it, and each member can contribute once per scope."""
    try:
        resource = file.read_bytes()
    except OSError as exc:
        raise MedchainError(f"cannot read {file}: {exc.strerror}") from exc
    with where.client(key) as client:
        identity = anon_submit(client, scope, resource, ring_size)
    ok(f"contributed anonymously to {scope!r} (transaction {identity.hex()})")


@on_chain
def anon_list(
    where: Chain, key: KeyOption, scope: Annotated[str, typer.Option(help="Your scope.")]
) -> None:
    """Institution: the contributions to a scope, decrypted (no contributor shown)."""
    with where.client(key) as client:
        found = contributions(client, scope)
    console.print_json(
        json.dumps(
            [
                {"index": c.entry.index, "ring_size": len(c.entry.ring), "resource": c.resource}
                for c in found
            ]
        )
    )
