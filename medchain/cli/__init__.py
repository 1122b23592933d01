"""The `medchain` command line: the top layer, composing client, node and bench."""

from __future__ import annotations

import typer

from medchain.cli import _commands as commands
from medchain.cli import _readings  # noqa: F401  (adds `reading list` to reading_app)
from medchain.cli._anchor import adopt_genesis, anchor_app, fork, recover, verify
from medchain.cli._anon import anon_app
from medchain.cli._bench import bench_app
from medchain.cli._demo import demo
from medchain.cli._devices import devices_app, gateways_app
from medchain.cli._gateway import gateway_app, reading_app
from medchain.cli._node import devnet_app, node_app
from medchain.cli._node_init import genesis_app
from medchain.cli._search import search_commands
from medchain.cli._sim import sim

app = typer.Typer(
    help="medchain: encrypted, patient-controlled medical records on a permissioned chain.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command()(commands.init)
app.command()(commands.status)
app.command()(commands.account)
app.command()(commands.register)
app.command()(commands.transfer)
app.command()(demo)
app.command()(sim)
app.command()(verify)
app.command()(recover)
app.command()(fork)
app.add_typer(commands.keys_app, name="keys")
search_commands(commands.record_app)
app.add_typer(commands.record_app, name="record")
app.add_typer(commands.research_app, name="research")
app.add_typer(commands.staking_app, name="staking")
app.add_typer(anon_app, name="anon")
app.add_typer(devices_app, name="devices")
app.add_typer(gateways_app, name="gateways")
app.add_typer(gateway_app, name="gateway")
app.add_typer(reading_app, name="reading")
app.add_typer(bench_app, name="bench")
app.add_typer(devnet_app, name="devnet")
app.add_typer(node_app, name="node")
app.add_typer(genesis_app, name="genesis")
app.add_typer(anchor_app, name="anchor")
node_app.command("adopt-genesis")(adopt_genesis)


def main() -> None:
    app()
