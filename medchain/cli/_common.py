"""Shared CLI plumbing: where the chain lives, loading keys, printing errors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from medchain.app import Role
from medchain.client import MedchainClient, search_state_path
from medchain.crypto import (
    AccountKeys,
    PassphraseRequired,
    format_address,
    load_keys,
    parse_address,
)
from medchain.node import GENESIS_FILE, LocalChain
from medchain.types import Allocation, Genesis, GenesisValidator, MedchainError

# Wide enough for the benchmark and simulator tables when output goes to a file or pipe.
console = Console(width=None if sys.stdout.isatty() else 150)
err_console = Console(stderr=True)

DEFAULT_DATA = Path(os.environ.get("MEDCHAIN_DATA", "medchain-data"))
PASSPHRASE_ENV = "MEDCHAIN_PASSPHRASE"
DEFAULT_CHAIN_ID = "medchain-local"
VALIDATOR_ALLOCATION = 1_000_000_000

DataOption = Annotated[
    Path,
    typer.Option(
        "--data",
        help="Data directory of the local chain (env MEDCHAIN_DATA); created on first use.",
        envvar="MEDCHAIN_DATA",
    ),
]
KeyOption = Annotated[Path, typer.Option("--key", help="Your key file (from `medchain keys new`).")]

P = ParamSpec("P")
R = TypeVar("R")


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a MedchainError into one readable line on stderr and exit status 1."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MedchainError as exc:
            err_console.print(
                f"[bold red]error[/] ({exc.code}): {exc.message}", highlight=False, soft_wrap=True
            )
            raise typer.Exit(1) from None

    return wrapper


def load_key_file(path: Path) -> AccountKeys:
    """Load a key file, asking for its passphrase on a terminal when it is encrypted."""
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        return load_keys(path, passphrase)
    except PassphraseRequired:
        if sys.stdin.isatty():
            return load_keys(path, typer.prompt(f"Passphrase for {path}", hide_input=True))
        raise


def default_genesis(validator: AccountKeys, chain_id: str = DEFAULT_CHAIN_ID) -> Genesis:
    from medchain.node import wall_clock_ms

    return Genesis(
        chain_id=chain_id,
        time_ms=wall_clock_ms(),
        allocations=(Allocation(validator.address, VALIDATOR_ALLOCATION),),
        validators=(GenesisValidator(validator.public_key, "local-validator"),),
    )


def create_chain(data: Path, chain_id: str = DEFAULT_CHAIN_ID) -> LocalChain:
    validator = AccountKeys.generate()
    return LocalChain.create(data, default_genesis(validator, chain_id), validator)


@contextmanager
def open_chain(data: Path, create: bool = True) -> Iterator[LocalChain]:
    if not (data / GENESIS_FILE).exists():
        if not create:
            raise MedchainError(f"{data} holds no chain; run `medchain init --data {data}`")
        chain = create_chain(data)
        err_console.print(
            f"[dim]created a new local chain {chain.chain_id!r} in {data} "
            f"(validator key: {data / 'validator.key'})[/]"
        )
    else:
        chain = LocalChain.open(data)
    try:
        yield chain
    finally:
        chain.close()


@contextmanager
def client_for(key: Path, data: Path, create: bool = False) -> Iterator[MedchainClient]:
    """The SDK client of the account in `key`, on the local chain in `data`."""
    keys = load_key_file(key)
    with open_chain(data, create) as chain:
        yield MedchainClient(keys, chain, search_state=search_state_path(key))


def address_arg(text: str) -> bytes:
    return parse_address(text)


def record_id_arg(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise MedchainError(
            f"{text!r} is not a record id (32 hex characters, as printed by `medchain record put`)"
        )
    return raw


def role_arg(text: str) -> Role:
    try:
        return Role(text.lower())
    except ValueError:
        roles = ", ".join(r.value for r in Role)
        raise MedchainError(f"unknown role {text!r}; choose one of: {roles}") from None


def show_address(address: bytes) -> str:
    return format_address(address)


def ok(message: str, **_: Any) -> None:
    console.print(f"[green]✓[/] {message}", highlight=False)
