"""Setting up a node of a network whose organisations each run their own machine:
`medchain node init` (a home with key, certificate and a config without peers),
`medchain node add-peer` (one allow-list entry) and `medchain genesis new|show`
(the document the consortium agrees on). docs/DEPLOY.md tells the whole story.

Nothing here needs another organisation's secrets: what travels between them is a
public key, a certificate, an address to dial and the genesis file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from medchain.cli._common import chain_id_arg, console, ok, reports_errors, warn_if_exposed
from medchain.cli._options import MAX_INT
from medchain.crypto import (
    address_from_public_key,
    format_address,
)
from medchain.node import (
    CONFIG_FILE,
    GENESIS_FILE,
    NODE_CERT_FILE,
    NODE_KEY_FILE,
    NodeConfig,
    add_peer,
    genesis_to_json,
    init_home,
    network_id,
    parse_allocations,
    parse_params,
    parse_validators,
    read_genesis,
    wall_clock_ms,
)
from medchain.types import Genesis, MedchainError

HomeOption = Annotated[
    Path, typer.Option("--home", help="The node's home directory.", file_okay=False)
]
PortOption = Annotated[int, typer.Option(min=1, max=65_535)]


@reports_errors
def node_init(
    home: HomeOption,
    name: Annotated[str, typer.Option(help="The node's name in logs and peers' configs.")],
    p2p_host: Annotated[
        str, typer.Option(help="Address to accept peers on (0.0.0.0: every interface).")
    ] = "0.0.0.0",
    p2p_port: PortOption = 9600,
    api_host: Annotated[
        str, typer.Option(help="Address of the HTTP API; keep it off the internet.")
    ] = "127.0.0.1",
    api_port: PortOption = 8600,
) -> None:
    """Create a node home: node.key (kept if already there), node.crt and a config.json
    without peers; print what the other organisations need from this node."""
    if not (home / CONFIG_FILE).exists() and (home / NODE_KEY_FILE).exists():
        warn_if_exposed(home / NODE_KEY_FILE)
    config = NodeConfig(
        name=name, p2p_host=p2p_host, p2p_port=p2p_port, api_host=api_host, api_port=api_port
    )
    keys, existing = init_home(home, config)
    ok(f"node {name!r} set up in {home} ({'kept its' if existing else 'new'} {NODE_KEY_FILE})")
    console.print(f"node key:    {keys.public_key.hex()}")
    console.print(f"address:     {keys.address_text}")
    console.print(f"certificate: {home / NODE_CERT_FILE}")
    console.print(f"p2p:         {p2p_host}:{p2p_port}")
    console.print(f"api:         {config.api_url}")
    console.print(
        "Send the node key, the certificate and the address peers should dial to the "
        f"other organisations; never {NODE_KEY_FILE}."
    )


@reports_errors
def node_add_peer(
    home: HomeOption,
    name: Annotated[str, typer.Option(help="The peer's name.")],
    key: Annotated[
        str, typer.Option(help="The peer's node key (64 hex digits), checked out of band.")
    ],
    cert: Annotated[Path, typer.Option(help="The peer's node.crt.", dir_okay=False)],
    host: Annotated[
        str | None, typer.Option(help="Where to dial it; omit for a peer that dials in.")
    ] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65_535, help="Its P2P port.")] = None,
) -> None:
    """Allow a peer: append it to the peers (the allow-list) in HOME/config.json.
    The node reads its config at start: restart it to apply."""
    peers = add_peer(home, name, key, cert, host, port)
    where = f"dialled at {host}:{port}" if host is not None else "dials in"
    ok(f"{name} allowed ({where}); {peers} peers; restart the node to apply")
    if (home / GENESIS_FILE).exists():
        voting = {v.public_key for v in read_genesis(home / GENESIS_FILE).validators}
        role = (
            "a validator"
            if bytes.fromhex(key.strip()) in voting
            else "not a validator (an observer)"
        )
        console.print(f"{name} is {role} in {home / GENESIS_FILE}")


@reports_errors
def genesis_new(
    chain_id: Annotated[str, typer.Option(help="The network's name, in every transaction.")],
    validator: Annotated[
        list[str], typer.Option(help="NAME=NODEKEY of a validator; repeat, in order.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the genesis.", dir_okay=False)],
    consensus: Annotated[str, typer.Option(help="pbft, afbft or dpos.")] = "afbft",
    alloc: Annotated[
        list[str] | None, typer.Option(help="ADDRESS=AMOUNT funded at genesis; repeat.")
    ] = None,
    param: Annotated[
        list[str] | None, typer.Option(help="NAME=INTEGER chain parameter, e.g. min_fee=1.")
    ] = None,
    time_ms: Annotated[
        int | None, typer.Option(min=0, max=MAX_INT, help="Genesis time (Unix ms); now by default.")
    ] = None,
) -> None:
    """Write the genesis document the consortium reviews and every node then holds,
    byte for byte."""
    if out.exists():
        raise MedchainError(f"{out} already exists; it may be the agreed genesis, so choose --out")
    genesis = Genesis(
        chain_id=chain_id_arg(chain_id),
        time_ms=wall_clock_ms() if time_ms is None else time_ms,
        params=parse_params(consensus, param or []),
        allocations=parse_allocations(alloc or []),
        validators=parse_validators(validator),
    )
    out.write_text(genesis_to_json(genesis))
    ok(f"genesis of {chain_id!r} written to {out}")
    _describe(genesis)


@reports_errors
def genesis_show(
    file: Annotated[Path, typer.Argument(help="A genesis.json.", dir_okay=False)] = Path(
        GENESIS_FILE
    ),
) -> None:
    """Summarise a genesis and print its network id: nodes whose network ids differ
    refuse each other, so every organisation compares this line."""
    _describe(read_genesis(file))


def _describe(genesis: Genesis) -> None:
    """The genesis in a few lines; its names and chain id are shown as written (no
    markup: the file may come from anyone)."""
    params, n = genesis.params, len(genesis.validators)
    lines = [f"chain:       {genesis.chain_id}", f"consensus:   {params.consensus}"]
    if params.consensus == "dpos":
        lines.append(f"validators:  {n} candidates, committees of {params.committee_size}")
    else:
        lines.append(f"validators:  {n} (blocks go on with {max(n - 1, 0) // 3} of them down)")
    for v in genesis.validators:
        address = format_address(address_from_public_key(v.public_key))
        lines.append(f"  {v.name:16} {v.public_key.hex()}  {address}")
    total = sum(a.amount for a in genesis.allocations)
    lines.append(f"funded:      {len(genesis.allocations)} account(s), {total:,} tokens")
    lines.append(f"network id:  {network_id(genesis)}")
    for line in lines:
        console.print(line, markup=False)
