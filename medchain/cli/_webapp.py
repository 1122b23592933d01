"""`medchain app`: the local web app for the account in a key file, or (with
--explorer) the read-only explorer of a node; served on 127.0.0.1 until Ctrl-C."""

from __future__ import annotations

from contextlib import AbstractContextManager
from pathlib import Path
from typing import Annotated

import typer
from starlette.applications import Starlette

from medchain.cli._common import console, load_key_file, open_backend, open_node, reports_errors
from medchain.cli._options import DEFAULT_NODE, DataOption, NodeOption
from medchain.client import ChainBackend
from medchain.types import MedchainError
from medchain.web import FHIR_PATH, Secrets, explorer_app, person_app, serve

DEFAULT_PORT = 8700


def _announce(url: str) -> None:
    console.print("Open this link in your browser (it holds this run's secret token):")
    console.print(url, soft_wrap=True, markup=False)
    console.print("[dim]Ctrl-C stops the app.[/]")


@reports_errors
def web_app(
    key: Annotated[
        Path | None,
        typer.Option("--key", help="Your key file: the app acts as this account.", dir_okay=False),
    ] = None,
    explorer: Annotated[
        bool, typer.Option("--explorer", help="Serve the read-only explorer of a node (no key).")
    ] = False,
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port on 127.0.0.1 (0: any free port).")
    ] = DEFAULT_PORT,
    node: NodeOption = DEFAULT_NODE,
    data: DataOption = None,
) -> None:
    """Open medchain in a browser: your records (with --key) or the chain's explorer
    (with --explorer). Only this computer can reach it, and only through the printed link."""
    if explorer:
        if key is not None or data is not None:
            raise MedchainError("the explorer holds no key and reads a node: give --node URL only")
        serve(lambda p, s: explorer_app(lambda: open_node(node), p, s), port, _announce)
        return
    if key is None:
        raise MedchainError("give --key FILE (your app) or --explorer (a node's explorer)")
    account = load_key_file(key)

    def chain() -> AbstractContextManager[ChainBackend]:
        return open_backend(node, data)

    fhir: list[str] = []

    def app(taken: int, keys: Secrets) -> Starlette:
        made = person_app(account, chain, taken, keys)
        fhir.extend((f"http://127.0.0.1:{taken}{FHIR_PATH}", keys.fhir))
        return made

    def announce(url: str) -> None:
        _announce(url)
        console.print(f"FHIR R4 for an EHR: base {fhir[0]}", soft_wrap=True, markup=False)
        console.print(f"  with 'Authorization: Bearer {fhir[1]}'", soft_wrap=True, markup=False)

    serve(app, port, announce)
