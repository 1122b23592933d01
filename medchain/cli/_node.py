"""`medchain node` (one node process: P2P, consensus, stores and its HTTP API) and
`medchain devnet up|down` (a local network of such processes)."""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Annotated

import typer

from medchain.api import ApiServer
from medchain.cli._common import (
    console,
    err_console,
    reports_errors,
    runs_a_home,
    warn_if_exposed,
)
from medchain.node import (
    ADMIN_KEY_FILE,
    NODE_KEY_FILE,
    ORG_KEY_FILE,
    ORGS_DIR,
    Devnet,
    Node,
    NodeConfig,
    ProcessFailed,
    VerificationChain,
    changed_params,
    create_devnet,
    load_devnet,
    open_devnet,
    parse_params,
    read_config,
    run_node_process,
    signals_raise,
    start_devnet,
    stop_devnet,
    until_a_node_exits,
)
from medchain.types import ChainParams

MAX_DEVNET_NODES = 100
"""Node processes on one machine."""

HomeOption = Annotated[
    Path, typer.Option("--home", help="The node's home directory.", file_okay=False)
]
DEFAULT_DEVNET_HOME = Path(os.environ.get("MEDCHAIN_DEVNET", "medchain-devnet"))
DevnetHome = Annotated[
    Path,
    typer.Option(
        "--home",
        help="Where the devnet's node homes live (env MEDCHAIN_DEVNET).",
        envvar="MEDCHAIN_DEVNET",
        file_okay=False,
    ),
]


@reports_errors
def node(home: HomeOption) -> None:
    """Run one node (validator or observer) from its home directory until SIGINT/SIGTERM."""
    config = read_config(home)
    warn_if_exposed(home / NODE_KEY_FILE)
    run_node_process(home, config, _api)


def _api(node_: Node, config: NodeConfig) -> ApiServer:
    host, port, max_body = config.api_host, config.api_port, config.max_request_bytes
    return ApiServer(node_, host, port, max_body_bytes=max_body)


def _start_all(devnet: Devnet) -> None:
    """Start the nodes not running yet and wait until they serve (stopping them all if
    that fails); a seam the parameter tests replace."""
    start_devnet(devnet)


@reports_errors
def devnet_up(
    home: DevnetHome = DEFAULT_DEVNET_HOME,
    nodes: Annotated[
        int, typer.Option("--nodes", min=1, max=MAX_DEVNET_NODES, help="Validators.")
    ] = 4,
    consensus: Annotated[str, typer.Option(help="pbft, afbft or dpos.")] = "afbft",
    observers: Annotated[
        int, typer.Option(min=0, max=MAX_DEVNET_NODES, help="Non-voting full nodes.")
    ] = 0,
    api_port: Annotated[
        int, typer.Option(min=1, max=65_535, help="Node i serves HTTP on this + i.")
    ] = 8600,
    p2p_port: Annotated[
        int, typer.Option(min=1, max=65_535, help="Node i listens for peers on this + i.")
    ] = 9600,
    block_interval_ms: Annotated[
        int, typer.Option(min=0, max=3_600_000, help="Pause between blocks.")
    ] = 1_000,
    anchor: Annotated[
        bool,
        typer.Option(
            help="Run Ganache (from npm) as the verification chain and anchor checkpoints "
            "on it (a new devnet only)."
        ),
    ] = True,
    eth_port: Annotated[
        int, typer.Option(min=1, max=65_535, help="Ganache's JSON-RPC port.")
    ] = 8545,
    detach: Annotated[bool, typer.Option(help="Leave the nodes running and return.")] = False,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="NAME=INTEGER: a chain parameter of a new devnet's genesis, e.g. "
            "device_restrict_blocks=8; repeat for more.",
        ),
    ] = None,
) -> None:
    """Start a local network (creating it on first use) and print its API URLs.
    In the foreground Ctrl-C stops every node cleanly; `--detach` leaves them running
    for `medchain devnet down`."""
    params = parse_params(consensus, param or [])  # unknown names and bad values refused first
    devnet, created = open_devnet(
        home,
        lambda: create_devnet(
            home,
            nodes,
            consensus,
            observers=observers,
            api_port=api_port,
            p2p_port=p2p_port,
            block_interval_ms=block_interval_ms,
            params=params,
            verification=VerificationChain(eth_port) if anchor else None,
        ),
    )
    _say_what_applies(devnet, created, nodes, consensus, params if param else None)
    console.print(
        f"starting {len(devnet.nodes)} nodes of [bold]{devnet.chain_id}[/] "
        f"({devnet.consensus}) in {home}"
    )
    try:
        _start_all(devnet)
    except ProcessFailed as exc:
        err_console.print(exc.tail, markup=False, highlight=False)
        raise
    _show(devnet)
    if detach:
        console.print(f"running in the background; stop with `medchain devnet down --home {home}`")
        return
    _until_interrupted(devnet)


def _until_interrupted(devnet: Devnet) -> None:
    """Until Ctrl-C, a SIGTERM or a closed terminal, or until a node exits; then stop
    every node."""
    console.print("Ctrl-C stops the network")
    with signals_raise((signal.SIGHUP, signal.SIGTERM), lambda _: KeyboardInterrupt()):
        try:
            until_a_node_exits(devnet)
            err_console.print("[red]a node exited; stopping the others (see its node.log)[/]")
        except KeyboardInterrupt:
            console.print("stopping…")
        finally:
            stopped = stop_devnet(devnet)
            console.print(f"stopped {stopped} node(s); data kept in {devnet.home}")


def _say_what_applies(
    devnet: Devnet, created: bool, nodes: int, consensus: str, params: ChainParams | None
) -> None:
    """The chain parameters given to a new devnet; what an existing one ignores."""
    if created:
        if params is not None:
            changed = ", ".join(f"{n}={getattr(params, n)}" for n in changed_params(params))
            console.print(f"chain parameters: {changed}")
        return
    if len(devnet.validators) != nodes or devnet.consensus != consensus:
        err_console.print(
            f"[yellow]{devnet.home} already holds a {len(devnet.validators)}-validator "
            f"{devnet.consensus} devnet; starting it as it is[/]"
        )
    if params is not None:
        err_console.print(
            f"[yellow]--param applies to a new devnet only: {devnet.home} keeps the chain "
            "parameters of its genesis (remove it to start anew)[/]"
        )


def _show(devnet: Devnet) -> None:
    for n in devnet.nodes:
        role = "validator" if n.validator else "observer"
        console.print(f"  {n.name:8} {role:9} API {n.api_url}  (docs {n.api_url}/docs)")
    if devnet.verification is not None:
        console.print(
            f"  verification chain (Ganache) {devnet.verification.rpc_url}: checkpoints "
            f"every {devnet.genesis().params.checkpoint_interval} blocks are anchored there; "
            "`medchain verify` checks a node against them"
        )
    console.print(f"funded account for demos and benchmarks: {devnet.faucet_key}")
    _show_web_app(devnet)
    founders = ", ".join(o.org_id for o in devnet.genesis().organisations)
    if founders:
        console.print(
            f"founding organisations ({founders}): admin and account key files in "
            f"{devnet.home / ORGS_DIR}/<org_id>/{ADMIN_KEY_FILE} and {ORG_KEY_FILE}"
        )


def _show_web_app(devnet: Devnet) -> None:
    """How to open the web app on this devnet: the explorer, and an account's pages."""
    node = devnet.nodes[0].api_url
    console.print("open it in a browser (each command prints the link to open):", soft_wrap=True)
    console.print(f"  explorer  medchain app --explorer --node {node}", soft_wrap=True)
    console.print(
        f"  account   medchain app --key FILE --node {node}  (FILE: a key from "
        "`medchain keys new`, registered with `medchain register`)",
        soft_wrap=True,
    )


@reports_errors
def devnet_down(home: DevnetHome = DEFAULT_DEVNET_HOME) -> None:
    """Stop every node of the devnet in `--home` (their data stays)."""
    devnet = load_devnet(home)
    stopped = stop_devnet(devnet)
    console.print(f"stopped {stopped} node(s) of {devnet.chain_id}; data kept in {home}")


node_main = runs_a_home(node, "node_main", "Run the node of this home (as `node run`).")
