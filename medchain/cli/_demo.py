"""`medchain demo`: the whole story, told step by step against a real network.

By default the demo starts a fresh 4-validator AFBFT devnet of node processes on
127.0.0.1 and tells the story through the SDK over the nodes' HTTP API: signed
transactions through consensus, HPKE key wrapping, blobs, the other nodes agreeing,
a validator killed and recovered. `--node` tells it on a running network instead,
`--local` on the in-process single-validator chain. Every claim the report makes is
checked as it is printed (a failed check stops the demo with an error)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer

from medchain.cli._commands import audit_table
from medchain.cli._common import (
    console,
    create_chain,
    err_console,
    load_key_file,
    reports_errors,
)
from medchain.cli._node import DEFAULT_DEVNET_HOME
from medchain.demo import LocalStage, NetworkStage, Story, run_story, running_devnet
from medchain.node import ORGS_DIR, given_nodes
from medchain.types import MedchainError


@contextmanager
def _home(data: Path | None, name: str) -> Iterator[Path]:
    """`data` if given (kept afterwards), else a temporary directory."""
    if data is not None:
        if data.exists() and any(data.iterdir()):
            raise MedchainError(f"{data} is not empty; give --data a new directory")
        yield data
        return
    with tempfile.TemporaryDirectory(prefix="medchain-demo-") as tmp:
        yield Path(tmp) / name


def _story() -> Story:
    return Story(console, audit_table)


@reports_errors
def demo(
    local: Annotated[
        bool,
        typer.Option(
            "--local", help="Tell the story on an in-process single-validator chain instead."
        ),
    ] = False,
    node: Annotated[
        list[str] | None,
        typer.Option(
            "--node",
            help="Tell the story on this running network (e.g. the one `make run` starts) "
            "instead of a fresh devnet; repeat it for each node to compare.",
            show_default=False,
        ),
    ] = None,
    faucet: Annotated[
        Path | None,
        typer.Option(
            "--faucet",
            help="With --node: key of a funded account to pay the actors from "
            "(without it, the steps that need tokens are skipped).",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    orgs: Annotated[
        Path | None,
        typer.Option(
            "--orgs",
            help="With --node: the member organisations' key files (<org_id>/admin.key and "
            "org.key; default: the devnet's orgs/ when the node is one of its nodes).",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Keep the demo's chain (the devnet's node homes, or the --local chain) "
            "in this new directory (default: temporary).",
            show_default=False,
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Run the end-to-end story: registration, a hospital credentialing its doctors,
    encrypted records, grants, revocation, research copies, keyword search, an
    anonymous contribution, the audit trail, a mother acting for her child, attacks
    refused, staking, a crash and recovery, and the patient's rights: consent with a
    purpose and an expiry, a standing consent, erasure and key recovery."""
    began = time.monotonic()
    if local and node:
        raise MedchainError("choose --local or --node, not both")
    if (faucet is not None or orgs is not None) and not node:
        raise MedchainError(
            "--faucet and --orgs are for --node; the demo's own chains have their own"
        )
    if local:
        _local(data)
    elif node:
        if data is not None:
            raise MedchainError("--data is for the demo's own chains, not a --node network")
        _remote(node, faucet, orgs)
    else:
        _devnet(data)
    console.print(f"[dim]the demo took {time.monotonic() - began:.1f} s[/]")


def _local(data: Path | None) -> None:
    with _home(data, "chain") as home:
        chain = create_chain(home, "medchain-demo")
        try:
            run_story(LocalStage(chain, home), _story())
        finally:
            chain.close()


def _devnet(data: Path | None) -> None:
    with _home(data, "devnet") as home:
        with running_devnet(home, console, err_console) as net:
            stage = NetworkStage.for_devnet(net)
            try:
                run_story(stage, _story())
            finally:
                stage.close()
        first = net.nodes[0]
        console.print(
            f"while the demo ran, the API docs were at {first.api_url}/docs "
            f"(and /docs of every node); for a network that stays up: `make run`"
        )


def _remote(urls: list[str], faucet: Path | None, orgs: Path | None) -> None:
    nodes, devnet = given_nodes(urls, DEFAULT_DEVNET_HOME)
    if orgs is None and devnet is not None:
        orgs = devnet.home / ORGS_DIR
    bank = load_key_file(faucet) if faucet is not None else None
    if bank is None:
        hint = f" (this devnet's is {devnet.faucet_key})" if devnet is not None else ""
        console.print(
            f"[yellow]no --faucet: the steps that need tokens are skipped; give a funded "
            f"account's key to run them{hint}[/]"
        )
    stage = NetworkStage(nodes, bank=bank, orgs_dir=orgs)
    try:
        run_story(stage, _story())
    finally:
        stage.close()


__all__ = ["demo"]
