"""`on_chain`: a command gets --node and --data after its own options, and the Chain
they name as its first parameter; its errors become one line and exit status 1."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.testing import CliRunner

from medchain.cli._common import Chain, on_chain
from medchain.cli._options import DEFAULT_NODE
from medchain.types import MedchainError

seen: list[tuple[Chain, str, int]] = []


@on_chain
def probe(where: Chain, name: str, times: Annotated[int, typer.Option(min=1)] = 1) -> None:
    """Remember what the command was given."""
    if name == "bad":
        raise MedchainError("a bad name; give a good one")
    seen.append((where, name, times))


app = typer.Typer()
app.command()(probe)
app.command("other")(lambda: None)  # two commands, so `probe` is a subcommand
runner = CliRunner()


def test_the_command_gets_the_chain_its_options_name(tmp_path: Path) -> None:
    seen.clear()
    result = runner.invoke(app, ["probe", "alice", "--times", "2", "--data", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen == [(Chain(DEFAULT_NODE, tmp_path), "alice", 2)]
    runner.invoke(app, ["probe", "bob", "--node", "http://127.0.0.1:9"])
    assert seen[-1] == (Chain("http://127.0.0.1:9", None), "bob", 1)


def test_node_and_data_come_after_the_commands_own_options() -> None:
    command = typer.main.get_command(app).commands["probe"]  # type: ignore[attr-defined]
    assert [p.name for p in command.params] == ["name", "times", "node", "data"]
    assert command.help.startswith("Remember what the command was given.")


def test_errors_are_one_line_and_status_one() -> None:
    result = runner.invoke(app, ["probe", "bad"])
    assert result.exit_code == 1
    assert "error (medchain_error): a bad name; give a good one" in result.output
