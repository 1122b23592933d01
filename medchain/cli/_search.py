"""`medchain record search | index | unindex | search-grant`: encrypted keyword search.

Keywords stay on this machine: the chain and the node see only labels, label keys and
encrypted values (docs/PRIVACY.md). The account's search state (epochs and counters)
is kept encrypted next to its key file, as KEY.search.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from medchain.cli._common import (
    Chain,
    address_arg,
    console,
    err_console,
    ok,
    on_chain,
    record_id_arg,
)
from medchain.cli._options import KeyOption, KeywordsOption, ReadPurposeOption
from medchain.client import SearchResult, open_capability
from medchain.crypto import format_address
from medchain.types import MedchainError

PadOption = Annotated[
    bool,
    typer.Option(
        "--pad", help="Pad each keyword's entry count to a power of two with dummy entries."
    ),
]


@on_chain
def record_search(
    where: Chain,
    key: KeyOption,
    keyword: Annotated[str, typer.Option("--keyword", help="The keyword to look for.")],
    owner: Annotated[
        str | None,
        typer.Option(help="Whose index to search (default yours; others need --capability)."),
    ] = None,
    capability: Annotated[
        Path | None,
        typer.Option(
            help="A capability file from the owner (`medchain record search-grant`).",
            dir_okay=False,
        ),
    ] = None,
    decrypt: Annotated[
        bool, typer.Option("--decrypt", help="Also print the records you may open, as JSON.")
    ] = False,
    purpose: ReadPurposeOption = None,
) -> None:
    """Find records by keyword in an encrypted index; prints their ids."""
    owner_address = address_arg(owner) if owner is not None else None
    with where.client(key, purpose=purpose) as client:
        if capability is None:
            result = client.search(keyword, owner_address, decrypt)
        else:
            granted = _read_bytes(capability)
            if owner_address not in (None, open_capability(client, granted).owner):
                raise MedchainError(
                    f"{capability} is a capability for another account's index, not "
                    f"{owner}'s; drop --owner or use that account's capability"
                )
            result = client.search_with_capability(granted, keyword, decrypt)
    _print_result(result, decrypt)


def _print_result(result: SearchResult, decrypt: bool) -> None:
    if not decrypt:
        for record_id in result.record_ids:
            console.print(record_id.hex(), highlight=False)
        if not result.record_ids:
            err_console.print("[dim]no record matches[/]")
        return
    console.print_json(
        json.dumps([{"record": o.record_id.hex(), "resource": o.resource} for o in result.opened])
    )
    for skipped in result.skipped:
        err_console.print(
            f"[yellow]skipped[/] {skipped.record_id.hex()}: {skipped.reason}",
            highlight=False,
            soft_wrap=True,
        )


@on_chain
def record_index(
    where: Chain,
    key: KeyOption,
    record_ids: Annotated[list[str], typer.Argument(help="Record ids (indexed together).")],
    keyword: KeywordsOption,
    pad: PadOption = False,
) -> None:
    """Index records under keywords in your own encrypted index."""
    ids = [record_id_arg(r) for r in record_ids]
    with where.client(key) as client:
        client.index_records({i: keyword for i in ids}, pad)
    ok(f"indexed {len(ids)} record(s) under {len(set(keyword))} keyword(s)")


@on_chain
def record_unindex(where: Chain, key: KeyOption, record_id: str, keyword: KeywordsOption) -> None:
    """Remove a record from your index under keywords (a tombstone entry)."""
    with where.client(key) as client:
        client.delete_from_index(record_id_arg(record_id), keyword)
    ok(f"{record_id} no longer found under {len(set(keyword))} keyword(s)")


@on_chain
def record_search_grant(
    where: Chain,
    key: KeyOption,
    reader: Annotated[str, typer.Option(help="Address of the account that may search.")],
    keyword: KeywordsOption,
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the capability file.", dir_okay=False)
    ],
) -> None:
    """Let a reader search your index for these keywords (entries indexed so far)."""
    with where.client(key) as client:
        capability = client.grant_search(address_arg(reader), keyword)
    try:
        with out.open("xb") as f:
            f.write(capability)
    except FileExistsError:
        raise MedchainError(f"{out} already exists; choose another --out path") from None
    except OSError as exc:
        raise MedchainError(f"cannot write {out}: {exc.strerror or exc}") from None
    ok(
        f"capability for {len(set(keyword))} keyword(s) written to {out}; only "
        f"{format_address(address_arg(reader))} can open it"
    )


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MedchainError(f"cannot read {path}: {exc.strerror or exc}") from None
