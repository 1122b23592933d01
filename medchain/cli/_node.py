"""`medchain node` (one node process: P2P, consensus, stores and its HTTP API) and
`medchain devnet up|down` (a local network of such processes)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import logging
import os
import signal
import time
from pathlib import Path
from typing import Annotated

import httpx
import typer

from medchain.api import ApiServer
from medchain.cli._common import console, err_console, reports_errors, warn_if_exposed
from medchain.node import (
    DEVNET_FILE,
    GENESIS_FILE,
    NODE_KEY_FILE,
    PID_FILE,
    Devnet,
    DevnetError,
    Node,
    VerificationChain,
    configure_node_logging,
    create_devnet,
    load_devnet,
    parse_params,
    read_config,
    read_genesis,
    read_pid,
    start_node,
    start_verification_chain,
    stop_node,
    stop_verification_chain,
)
from medchain.types import ChainParams, MedchainError

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


async def _serve_node(home: Path) -> None:
    config = read_config(home)
    node = Node(home, config)
    # The loaded state and code are long-lived: keep them out of the collector's scans,
    # and collect young objects less often (a full scan of a large heap stalls the one
    # loop that serves consensus and the API alike).
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    api = ApiServer(node, config.api_host, config.api_port, max_body_bytes=config.max_request_bytes)
    await node.start()
    try:
        await api.start()
        logging.getLogger("medchain.node").info("%s serves its API on %s", config.name, api.url)
        await node.until_stopped(stop)
    finally:
        await api.stop()
        await node.close()


@reports_errors
def node(home: HomeOption) -> None:
    """Run one node (validator or observer) from its home directory until SIGINT/SIGTERM."""
    config = read_config(home)
    warn_if_exposed(home / NODE_KEY_FILE)
    configure_node_logging(home, config)
    pid_file = home / PID_FILE
    pid_file.write_text(f"{os.getpid()}\n")
    log = logging.getLogger("medchain.node")
    try:
        asyncio.run(_serve_node(home))
    except MedchainError as exc:
        log.error("the node stopped: %s", exc.message)
        raise
    except Exception:
        log.exception("the node stopped on an unexpected error")
        raise
    finally:
        with contextlib.suppress(OSError):
            if pid_file.read_text().strip() == str(os.getpid()):
                pid_file.unlink()


def wait_ready(devnet: Devnet, timeout_s: float = 60.0) -> None:
    """Until every node's API answers /health."""
    deadline = time.monotonic() + timeout_s
    pending = list(devnet.nodes)
    with httpx.Client(timeout=1.0) as http:
        while pending:
            if time.monotonic() > deadline:
                names = ", ".join(n.name for n in pending)
                raise DevnetError(
                    f"{names} did not come up within {timeout_s:.0f} s; "
                    f"see node.log in their homes under {devnet.home}"
                )
            node_ = pending[0]
            try:
                if http.get(f"{node_.api_url}/health").status_code == 200:
                    pending.pop(0)
                    continue
            except httpx.HTTPError:
                pass
            time.sleep(0.2)


def _start_all(devnet: Devnet) -> None:
    """Start the nodes not running yet, each in a session of its own: Ctrl-C reaches
    `devnet up` only, which then stops them one by one (and reports what it stopped)."""
    if devnet.verification is not None:
        start_verification_chain(devnet)
    for node_ in devnet.nodes:
        if read_pid(node_.home) is None:
            start_node(node_.home, detach=True)
    wait_ready(devnet)


def _checkpoint_interval(devnet: Devnet) -> int:
    return read_genesis(devnet.nodes[0].home / GENESIS_FILE).params.checkpoint_interval


def _changed(params: ChainParams) -> list[str]:
    """The parameters that differ from the defaults (consensus aside)."""
    default = ChainParams()
    return [
        f.name
        for f in dataclasses.fields(ChainParams)
        if f.name != "consensus" and getattr(params, f.name) != getattr(default, f.name)
    ]


def _stop_all(devnet: Devnet) -> int:
    stopped = sum(stop_node(n.home) for n in devnet.nodes)
    stop_verification_chain(devnet)
    return stopped


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
    last = nodes + observers - 1
    if max(api_port, p2p_port) + last > 65_535:
        raise DevnetError(
            f"node {last} would listen on port {max(api_port, p2p_port) + last}, past 65535; "
            "choose lower --api-port and --p2p-port"
        )
    if (home / DEVNET_FILE).exists():
        devnet = load_devnet(home)
        if len(devnet.validators) != nodes or devnet.consensus != consensus:
            err_console.print(
                f"[yellow]{home} already holds a {len(devnet.validators)}-validator "
                f"{devnet.consensus} devnet; starting it as it is[/]"
            )
        if param:
            err_console.print(
                f"[yellow]--param applies to a new devnet only: {home} keeps the chain "
                "parameters of its genesis (remove it to start anew)[/]"
            )
    else:
        devnet = create_devnet(
            home,
            nodes,
            consensus,
            observers=observers,
            api_port=api_port,
            p2p_port=p2p_port,
            block_interval_ms=block_interval_ms,
            params=params,
            verification=VerificationChain(eth_port) if anchor else None,
        )
        if param:
            changed = ", ".join(f"{n}={getattr(params, n)}" for n in _changed(params))
            console.print(f"chain parameters: {changed}")
    console.print(
        f"starting {len(devnet.nodes)} nodes of [bold]{devnet.chain_id}[/] "
        f"({devnet.consensus}) in {home}"
    )
    try:
        _start_all(devnet)
    except BaseException:
        _stop_all(devnet)
        raise
    for n in devnet.nodes:
        role = "validator" if n.validator else "observer"
        console.print(f"  {n.name:8} {role:9} API {n.api_url}  (docs {n.api_url}/docs)")
    if devnet.verification is not None:
        console.print(
            f"  verification chain (Ganache) {devnet.verification.rpc_url}: checkpoints "
            f"every {_checkpoint_interval(devnet)} blocks are anchored there; "
            "`medchain verify` checks a node against them"
        )
    console.print(f"funded account for demos and benchmarks: {devnet.faucet_key}")
    if detach:
        console.print(f"running in the background; stop with `medchain devnet down --home {home}`")
        return
    console.print("Ctrl-C stops the network")

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # a closed terminal or a SIGTERM stops the nodes too

    for sig in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, interrupt)
    try:
        while all(read_pid(n.home) is not None for n in devnet.nodes):
            time.sleep(0.5)
        err_console.print("[red]a node exited; stopping the others (see its node.log)[/]")
    except KeyboardInterrupt:
        console.print("stopping…")
    finally:
        stopped = _stop_all(devnet)
        console.print(f"stopped {stopped} node(s); data kept in {home}")


@reports_errors
def devnet_down(home: DevnetHome = DEFAULT_DEVNET_HOME) -> None:
    """Stop every node of the devnet in `--home` (their data stays)."""
    devnet = load_devnet(home)
    stopped = _stop_all(devnet)
    console.print(f"stopped {stopped} node(s) of {devnet.chain_id}; data kept in {home}")


def node_main(
    ctx: typer.Context,
    home: Annotated[
        Path | None,
        typer.Option("--home", help="Run the node of this home (as `node run`).", file_okay=False),
    ] = None,
) -> None:
    """Run a node (`medchain node --home DIR`), or set up its home."""
    if ctx.invoked_subcommand is not None:
        return
    if home is None:
        typer.echo(ctx.get_help())
        raise typer.Exit(2)
    node(home)
