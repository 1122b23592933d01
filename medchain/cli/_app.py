"""The whole `medchain` command tree, built in one place.

The command modules define plain functions (typer parameters and `@reports_errors`);
every group and every command is named and attached here, so that the tree reads at a
glance and nothing registers itself as a side effect of an import."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import typer

from medchain.cli import _anchor as anchor
from medchain.cli import _anon as anon
from medchain.cli import _bench as bench
from medchain.cli import _commands as commands
from medchain.cli import _devices as devices
from medchain.cli import _gateway as gateway
from medchain.cli import _node as node
from medchain.cli import _node_init as node_init
from medchain.cli import _readings as readings
from medchain.cli import _search as search
from medchain.cli._demo import demo
from medchain.cli._sim import sim

Commands = dict[str, Callable[..., Any]]

app = typer.Typer(
    help="medchain: encrypted, patient-controlled medical records on a permissioned chain.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


def _group(
    parent: typer.Typer,
    name: str,
    help: str,
    commands: Commands,
    default: Callable[..., Any] | None = None,
) -> typer.Typer:
    """A command group under `parent`; `default` runs when no subcommand is given
    (without one, the group shows its help)."""
    group = typer.Typer(help=help, no_args_is_help=default is None)
    if default is not None:
        group.callback(invoke_without_command=True)(default)
    for command_name, command in commands.items():
        group.command(command_name)(command)
    parent.add_typer(group, name=name)
    return group


for command in (
    commands.init,
    commands.status,
    commands.account,
    commands.register,
    commands.transfer,
    demo,
    sim,
    anchor.verify,
    anchor.recover,
    anchor.fork,
):
    app.command()(command)

_group(
    app,
    "keys",
    "Create and inspect account key files.",
    {"new": commands.keys_new, "show": commands.keys_show},
)
_group(
    app,
    "record",
    "Encrypted medical records (FHIR R4).",
    {
        "put": commands.record_put,
        "get": commands.record_get,
        "update": commands.record_update,
        "grant": commands.record_grant,
        "revoke": commands.record_revoke,
        "show": commands.record_show,
        "list": commands.record_list,
        "audit": commands.record_audit,
        "search": search.record_search,
        "index": search.record_index,
        "unindex": search.record_unindex,
        "search-grant": search.record_search_grant,
    },
)
_group(
    app,
    "research",
    "De-identified records for research.",
    {
        "grant": commands.research_grant,
        "revoke": commands.research_revoke,
        "data": commands.research_data,
    },
)
_group(
    app,
    "staking",
    "Stake tokens and vote for validators.",
    {
        "stake": commands.staking_stake,
        "unstake": commands.staking_unstake,
        "withdraw": commands.staking_withdraw,
        "candidate": commands.staking_candidate,
        "vote": commands.staking_vote,
        "unvote": commands.staking_unvote,
        "candidates": commands.staking_candidates,
    },
)
_group(
    app,
    "anon",
    "Anonymous contributions (linkable ring signatures).",
    {
        "open": anon.anon_open,
        "close": anon.anon_close,
        "submit": anon.anon_submit_cmd,
        "list": anon.anon_list,
    },
)
devices_app = _group(
    app,
    "devices",
    "Medical devices: register them for a patient, guardians, states, audit trails.",
    {
        "register": devices.devices_register,
        "relabel": devices.devices_relabel,
        "show": devices.devices_show,
        "list": devices.devices_list,
        "audit": devices.devices_audit,
        "state": devices.devices_state,
        "share-vitals": devices.share_vitals,
        "unshare-vitals": devices.unshare_vitals,
        "vitals-readers": devices.vitals_readers,
        "simulate": gateway.devices_simulate,
    },
)
_group(
    devices_app,
    "guardian",
    "Guardians: accounts a patient lets manage their devices.",
    {
        "add": devices.guardian_add,
        "remove": devices.guardian_remove,
        "list": devices.guardian_list,
    },
)
_group(
    app,
    "gateways",
    "Edge gateways: hospitals register them to report devices and commit readings.",
    {
        "register": devices.gateways_register,
        "revoke": devices.gateways_revoke,
        "show": devices.gateways_show,
    },
)
_group(
    app,
    "gateway",
    "Run an edge gateway, or set up its home.",
    {"init": gateway.gateway_init, "run": gateway.gateway_run},
    default=gateway.gateway_main,
)
_group(
    app,
    "reading",
    "Device readings committed by a gateway: prove them against the chain.",
    {"prove": gateway.reading_prove, "list": readings.reading_list},
)
_group(
    app,
    "bench",
    "Benchmarks (figures for docs/BENCHMARKS.md). Without a subcommand: the network "
    "benchmark on a fresh local devnet.",
    {
        "ledger": bench.ledger,
        "sim": bench.sim_speed,
        "state": bench.state_root,
        "ring": bench.ring,
        "flood": bench.flood,
        "search": bench.search_speed,
        "gateway": bench.gateway,
    },
    default=bench.network,
)
_group(
    app,
    "devnet",
    "A local network of node processes on this machine.",
    {"up": node.devnet_up, "down": node.devnet_down},
)
_group(
    app,
    "node",
    "Run a node, or set up its home.",
    {
        "run": node.node,
        "init": node_init.node_init,
        "add-peer": node_init.node_add_peer,
        "adopt-genesis": anchor.adopt_genesis,
    },
    default=node.node_main,
)
_group(
    app,
    "genesis",
    "The genesis document every node of a network starts from.",
    {"new": node_init.genesis_new, "show": node_init.genesis_show},
)
_group(
    app,
    "anchor",
    "The anchor contract on the verification chain (Ethereum).",
    {"register": anchor.anchor_register, "key": anchor.anchor_key},
)


def main() -> None:
    app()
