"""Shared CLI plumbing: where the chain lives (a node, or a local chain with
--data), loading keys, printing errors."""

from __future__ import annotations

import enum
import inspect
import os
import shlex
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from medchain.anchor import MAX_CHAIN_ID_BYTES
from medchain.app import MS_PER_DAY, PurposeOfUse, Role
from medchain.cli._options import DEFAULT_NODE, DataOption, NodeOption
from medchain.client import (
    ChainBackend,
    HttpChain,
    MedchainClient,
    NodeUnreachable,
    search_state_path,
)
from medchain.crypto import (
    AccountKeys,
    PassphraseRequired,
    exposed_to_others,
    format_address,
    load_keys,
    parse_address,
)
from medchain.node import GENESIS_FILE, FoundingKeys, LocalChain, founding_keys
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator, MedchainError

# Wide enough for the benchmark and simulator tables when output goes to a file or pipe.
# No automatic highlighting: its patterns take minutes over a long value a user typed,
# and the output's colours are chosen where it is printed.
console = Console(width=None if sys.stdout.isatty() else 150, highlight=False)
err_console = Console(stderr=True, highlight=False)

PASSPHRASE_ENV = "MEDCHAIN_PASSPHRASE"
DEFAULT_CHAIN_ID = "medchain-local"
VALIDATOR_ALLOCATION = 1_000_000_000


KEYWORD = inspect.Parameter.KEYWORD_ONLY
P = ParamSpec("P")
R = TypeVar("R")
E = TypeVar("E", bound=enum.Enum)


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn a MedchainError into one readable line on stderr and exit status 1; so too
    an OSError about a path (the file system refused it: too long, not permitted, no
    space), which names the path and the reason."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except MedchainError as exc:
            print_error(exc.code, exc.message)
            raise typer.Exit(1) from None
        except OSError as exc:
            if exc.filename is None:
                raise
            reason = exc.strerror or type(exc).__name__
            print_error("os_error", f"{exc.filename}: {reason}; check the path and permissions")
            raise typer.Exit(1) from None

    return wrapper


def print_error(code: str, message: str) -> None:
    """`error (code): message` on one line of stderr, whatever the message holds (it
    may quote what the user typed: markup and line breaks are shown, not obeyed)."""
    one_line = message.replace("\r", "\\r").replace("\n", "\\n")
    err_console.print(
        f"[bold red]error[/] ({code}): {escape(one_line)}", highlight=False, soft_wrap=True
    )


def warn_if_exposed(path: Path) -> None:
    """One line on stderr when other users of this machine may read or change the key
    file at `path` (as ssh does, but the key is still used)."""
    mode = exposed_to_others(path)
    if mode is not None:
        err_console.print(
            f"[bold yellow]warning[/]: key file {escape(str(path))} has mode {mode:04o}: "
            "other users of this machine may read or change it; restrict it with "
            f"`chmod 600 {escape(shlex.quote(str(path)))}`",
            highlight=False,
            soft_wrap=True,
        )


def load_key_file(path: Path) -> AccountKeys:
    """Load a key file, asking for its passphrase on a terminal when it is encrypted,
    and warn when its mode lets others read it."""
    warn_if_exposed(path)
    passphrase = os.environ.get(PASSPHRASE_ENV)
    try:
        return load_keys(path, passphrase)
    except PassphraseRequired:
        if sys.stdin.isatty():
            return load_keys(path, typer.prompt(f"Passphrase for {path}", hide_input=True))
        raise


def default_genesis(
    validator: AccountKeys,
    chain_id: str = DEFAULT_CHAIN_ID,
    founders: Sequence[FoundingKeys] = (),
) -> Genesis:
    """A single-validator chain; with `founders`, the validator belongs to the first."""
    from medchain.node import development_params, wall_clock_ms

    return Genesis(
        chain_id=chain_id,
        time_ms=wall_clock_ms(),
        params=development_params(ChainParams()),
        allocations=(
            Allocation(validator.address, VALIDATOR_ALLOCATION),
            *(a for f in founders for a in f.allocations()),
        ),
        validators=(
            GenesisValidator(
                validator.public_key,
                "local-validator",
                organisation=founders[0].org.org_id if founders else "",
            ),
        ),
        organisations=tuple(f.genesis_entry() for f in founders),
    )


def create_chain(data: Path, chain_id: str = DEFAULT_CHAIN_ID) -> LocalChain:
    """A new local chain in `data`, founded by the devnet's organisations, whose admin and
    account key files it writes under `data/orgs/` (as a devnet does)."""
    validator = AccountKeys.generate()
    founders = founding_keys()
    chain = LocalChain.create(data, default_genesis(validator, chain_id, founders), validator)
    for founder in founders:
        founder.save(data)
    return chain


@contextmanager
def open_chain(data: Path, create: bool = True) -> Iterator[LocalChain]:
    try:
        exists = (data / GENESIS_FILE).exists()
    except OSError as exc:  # a name too long, a directory we may not enter
        raise MedchainError(
            f"cannot use {data} as a chain directory ({exc.strerror}); check --data"
        ) from None
    if not exists:
        if not create:
            raise MedchainError(f"{data} holds no chain; run `medchain init --data {data}`")
        chain = create_chain(data)
        err_console.print(
            f"[dim]created a new local chain {chain.chain_id!r} in {escape(str(data))} "
            f"(validator key: {escape(str(data / 'validator.key'))})[/]"
        )
    else:
        chain = LocalChain.open(data)
    try:
        yield chain
    finally:
        chain.close()


@contextmanager
def open_backend(node: str, data: Path | None, create: bool = False) -> Iterator[ChainBackend]:
    """The chain a command works on: the local chain in `data` when one is given
    (created first if `create`), else the node serving its API at `node`."""
    if data is not None:
        with open_chain(data, create) as chain:
            yield chain
    else:
        with open_node(node) as remote:
            yield remote


@contextmanager
def open_node(node: str) -> Iterator[HttpChain]:
    """The node whose API is at `node`; if it cannot be reached, the error also
    mentions --data (commands worked on a local chain by default before nodes)."""
    with HttpChain(node) as remote:
        try:
            yield remote
        except NodeUnreachable as exc:
            exc.message += "; or work on a local chain with --data DIR"
            raise


@contextmanager
def client_for(
    key: Path,
    node: str,
    data: Path | None,
    create: bool = False,
    purpose: PurposeOfUse | None = None,
) -> Iterator[MedchainClient]:
    """The SDK client of the account in `key`, on the chain `open_backend` picks; its
    reads of sealed data signed for `purpose` (see MedchainClient)."""
    keys = load_key_file(key)
    with open_backend(node, data, create) as chain:
        yield MedchainClient(keys, chain, search_state=search_state_path(key), purpose=purpose)


@dataclass(frozen=True)
class Chain:
    """The chain a command works on, as --node and --data name it."""

    node: str
    data: Path | None

    def backend(self, create: bool = False) -> AbstractContextManager[ChainBackend]:
        return open_backend(self.node, self.data, create)

    def client(
        self, key: Path, create: bool = False, purpose: PurposeOfUse | None = None
    ) -> AbstractContextManager[MedchainClient]:
        return client_for(key, self.node, self.data, create, purpose)


def on_chain(command: Callable[..., None]) -> Callable[..., None]:
    """A command that reads or writes the chain: its options, then --node and --data
    (as every such command takes them), which reach it as its first parameter, a
    `Chain`; its errors are reported as `reports_errors` does. Typer reads the
    options from the signature this gives the command."""
    signature = inspect.signature(command, eval_str=True)
    own = list(signature.parameters.values())[1:]
    where = [
        inspect.Parameter("node", KEYWORD, default=DEFAULT_NODE, annotation=NodeOption),
        inspect.Parameter("data", KEYWORD, default=None, annotation=DataOption),
    ]

    @reports_errors
    @wraps(command)
    def run(*args: Any, node: str, data: Path | None, **kwargs: Any) -> None:
        command(Chain(node, data), *args, **kwargs)

    run.__signature__ = signature.replace(parameters=[*own, *where])  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in [*own, *where]}
    return run


def address_arg(text: str) -> bytes:
    return parse_address(text)


def patient_arg(chain: ChainBackend, text: str) -> bytes:
    """A patient's address, checked on chain: a mistyped but well-formed address would
    otherwise list nothing, as if the patient had nothing."""
    raw = parse_address(text)
    identity = chain.identity(raw)
    if identity is None or identity.role is not Role.PATIENT:
        raise MedchainError(
            f"{text} is not a patient on this chain; check the address (patients register "
            "with `medchain register --role patient`)"
        )
    return raw


def hex_id_arg(text: str, size: int, what: str) -> bytes:
    """`size` bytes given as hex; otherwise an error saying `text` is not `what`."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise MedchainError(f"{text!r} is not {what}")
    return raw


def record_id_arg(text: str) -> bytes:
    return hex_id_arg(
        text, 16, "a record id (32 hex characters, as printed by `medchain record put`)"
    )


def chain_id_arg(text: str) -> str:
    """A new chain's id: it is in every transaction and anchored on Ethereum, so it is
    1 to 64 bytes of visible characters (the anchor contract's limit)."""
    size = len(text.encode("utf-8"))
    if (
        not 0 < size <= MAX_CHAIN_ID_BYTES
        or not text.isprintable()
        or text != "".join(text.split())
    ):
        raise MedchainError(
            f"{text[:80]!r} cannot be a chain id: give 1 to {MAX_CHAIN_ID_BYTES} bytes of "
            "letters, digits and punctuation, without spaces, e.g. medchain-consortium"
        )
    return text


def role_arg(text: str) -> Role:
    return choice(Role, text, "role")


def choice(kind: type[E], text: str, what: str) -> E:
    """`text` as a member of `kind`, or an error listing the choices."""
    try:
        return kind(text.strip().lower())
    except ValueError:
        choices = ", ".join(str(m.value) for m in kind)
        raise MedchainError(f"unknown {what} {text!r}; choose one of: {choices}") from None


def show_address(address: bytes) -> str:
    return format_address(address)


def expiry_after(days: int) -> int:
    """The block time `days` from now (0 days: 0, which never expires)."""
    return 0 if days == 0 else int(time.time() * 1000) + days * MS_PER_DAY


def show_expiry(expires_ms: int, never: str = "never expires") -> str:
    if expires_ms == 0:
        return never
    moment = datetime.fromtimestamp(expires_ms / 1000, UTC)
    return f"until {moment.strftime('%Y-%m-%d %H:%M UTC')}"


def ok(message: str, **_: Any) -> None:
    """A check mark and `message`, printed as it is (it may quote what the user typed)."""
    console.print(f"[green]✓[/] {escape(message)}", highlight=False)


def runs_a_home(run: Callable[[Path], None], name: str, home_help: str) -> Callable[..., None]:
    """The callback of a group such as `node` or `gateway`: called bare with `--home DIR`
    it runs that home (`medchain node --home DIR`), called bare without it, it shows the
    group's help; with a subcommand it does nothing."""

    def main(ctx: typer.Context, home: Path | None = None) -> None:
        if ctx.invoked_subcommand is not None:
            return
        if home is None:
            typer.echo(ctx.get_help())
            raise typer.Exit(2)
        run(home)

    main.__name__ = name
    # real objects, not strings: typer reads them, and `home_help` is not a global
    main.__annotations__ = {
        "ctx": typer.Context,
        "home": Annotated[Path | None, typer.Option("--home", help=home_help, file_okay=False)],
        "return": None,
    }
    return main
