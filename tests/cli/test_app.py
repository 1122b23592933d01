"""The command tree built in medchain.cli._app: every command a user had before the
tree was built in one place is still there, under the same path, and every group
without a default command shows its help when called bare."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from medchain.cli import app

COMMANDS = (
    "account",
    "anchor key",
    "anchor register",
    "anon close",
    "anon list",
    "anon open",
    "anon submit",
    "app",
    "bench app",
    "bench fhir",
    "bench flood",
    "bench gateway",
    "bench ledger",
    "bench ring",
    "bench search",
    "bench sim",
    "bench snapshot",
    "bench soak",
    "bench state",
    "bench state-growth",
    "consent export",
    "consent grant",
    "consent import",
    "consent list",
    "consent revoke",
    "demo",
    "docs",
    "devices audit",
    "devices guardian add",
    "devices guardian list",
    "devices guardian remove",
    "devices list",
    "devices register",
    "devices relabel",
    "devices share-vitals",
    "devices show",
    "devices simulate",
    "devices state",
    "devices unshare-vitals",
    "devices vitals-readers",
    "devnet down",
    "devnet up",
    "emergency list",
    "emergency open",
    "emergency policy",
    "emergency read",
    "emergency serve",
    "fhir",
    "fork",
    "gateway init",
    "gateway run",
    "gateways register",
    "gateways revoke",
    "gateways show",
    "genesis new",
    "genesis show",
    "init",
    "keys new",
    "keys rotate",
    "keys show",
    "node add-peer",
    "node adopt-genesis",
    "node check-disclosures",
    "node init",
    "node run",
    "notifications",
    "org approve",
    "org attest",
    "org credential",
    "org credentials",
    "org list",
    "org proposal",
    "org proposals",
    "org propose",
    "org reinstate",
    "org revoke",
    "org show",
    "org staff",
    "org suspend",
    "proxy add",
    "proxy list",
    "proxy remove",
    "reading list",
    "reading prove",
    "record audit",
    "record disclosures",
    "record erase",
    "record get",
    "record grant",
    "record index",
    "record list",
    "record put",
    "record revoke",
    "record search",
    "record search-grant",
    "record set-terms",
    "record show",
    "record unindex",
    "record update",
    "recover",
    "register",
    "recovery approve",
    "recovery cancel",
    "recovery complete",
    "recovery request",
    "recovery setup",
    "recovery status",
    "research data",
    "research grant",
    "research revoke",
    "sim bandwidth",
    "sim catch-up",
    "snapshot create",
    "snapshot list",
    "staking candidate",
    "staking candidates",
    "staking stake",
    "staking unstake",
    "staking unvote",
    "staking vote",
    "staking withdraw",
    "status",
    "transfer",
    "verify",
)
"""Every command path of `medchain` (groups are the paths' prefixes)."""

DEFAULT_COMMANDS = {
    "bench": "network",
    "gateway": "gateway_main",
    "node": "node_main",
    "sim": "sim",
}
"""Groups that run a command of their own when called without a subcommand."""


def _paths(command: object, path: str) -> list[str]:
    subcommands = getattr(command, "commands", None)
    if subcommands is None:
        return [path]
    found = []
    for name, sub in subcommands.items():
        found += _paths(sub, f"{path} {name}".strip())
    return found


def test_the_tree_holds_every_command_once() -> None:
    paths = _paths(typer.main.get_command(app), "")
    assert sorted(paths) == sorted(COMMANDS)


def _groups() -> list[str]:
    prefixes = {c.rsplit(" ", 1)[0] for c in COMMANDS if " " in c}
    return sorted(prefixes | {p.split(" ")[0] for p in prefixes})


@pytest.mark.parametrize("group", _groups())
def test_each_group_lists_its_commands_in_its_help(group: str) -> None:
    result = CliRunner().invoke(app, [*group.split(), "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    depth = len(group.split())
    own = {c.split()[depth] for c in COMMANDS if c.startswith(group + " ")}
    assert own
    for name in own:
        assert f" {name} " in result.output, f"{group} --help does not list {name}"


@pytest.mark.parametrize("group", _groups())
def test_a_group_called_bare_shows_its_help_or_runs_its_default(group: str) -> None:
    command = typer.main.get_command(app)
    for name in group.split():
        command = command.commands[name]  # type: ignore[attr-defined]
    default = DEFAULT_COMMANDS.get(group)
    if default is None:
        assert command.no_args_is_help
        assert command.callback is None or not command.invoke_without_command  # type: ignore[attr-defined]
    else:
        assert command.invoke_without_command  # type: ignore[attr-defined]
        assert command.callback is not None
        assert command.callback.__name__ == default
