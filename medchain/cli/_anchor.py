"""The dual chain's tools (paper 003): `medchain verify` (the auditor's active check
of a node against its anchors), `medchain recover` (cut a node's store back to its
last anchored good block), `medchain fork` (a new genesis from that block, for when
attackers hold the validator majority), `medchain node adopt-genesis` (a stopped
node moves to the fork) and `medchain anchor register` (the fork's chain id on the
anchor contract, so its validators can anchor).

Every Ethereum client comes from `_audit.contract_for`, which tests replace."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from eth_utils.address import is_address, to_checksum_address
from rich.table import Table

from medchain.anchor import AnchorRejected, Mismatch
from medchain.cli import _audit as audit
from medchain.cli._common import (
    chain_id_arg,
    console,
    ok,
    reports_errors,
)
from medchain.cli._options import DEFAULT_NODE, MAX_INT
from medchain.node import (
    GENESIS_FILE,
    RecoverReport,
    adopt_fork,
    anchor_settings,
    fork_home,
    fork_validators,
    network_id,
    read_genesis,
    recover_store,
    require_stopped,
    wall_clock_ms,
    write_genesis,
)
from medchain.types import Genesis, MedchainError

HomeOption = Annotated[
    Path, typer.Option("--home", help="The node's home directory.", file_okay=False)
]
AuditedNode = Annotated[
    str,
    typer.Option(
        "--node",
        help="URL of the HTTP API of the node to check (env MEDCHAIN_NODE).",
        envvar="MEDCHAIN_NODE",
    ),
]


# -- verify -------------------------------------------------------------------------


@reports_errors
def verify(
    node: AuditedNode = DEFAULT_NODE,
    eth_url: Annotated[
        str | None,
        typer.Option("--eth-url", help="Ethereum JSON-RPC endpoint; default: the node's."),
    ] = None,
    contract: Annotated[
        str | None, typer.Option("--contract", help="Anchor contract address; default: the node's.")
    ] = None,
    finality: Annotated[
        str | None,
        typer.Option(help="'finalized' or a number of confirmations; default: the node's."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Check a node's chain against its anchors on Ethereum (the auditor's check).

    The anchors are read here, from the verification chain, not from the node. Exit
    status 0: every anchored block the node holds checks out; 2: the alarm (a block
    contradicts a final anchor, an anchor is forged, or the contract recorded a
    conflict); 1: the node or the verification chain could not be read."""
    result = audit.audit_node(
        node,
        eth_url=eth_url,
        contract=contract,
        finality=None if finality is None else audit.parse_finality(finality),
    )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
    else:
        console.print(_audit_table(result))
        _verdict(result)
    raise typer.Exit(result.exit_code)


def _short(value: bytes) -> str:
    return value.hex() if value else "-"


def _mismatch(mismatch: Mismatch | None) -> str:
    if mismatch is None:
        return "none"
    return (
        f"[bold red]height {mismatch.height}: {mismatch.what}[/]\n"
        f"expected {_short(mismatch.expected)}\nfound    {_short(mismatch.found)}"
        + (f"\n{mismatch.detail}" if mismatch.detail else "")
    )


def _node_check(result: audit.AuditResult) -> str:
    own = result.node_report
    if own is None:
        text = "no report (the node does not anchor, or has not checked yet)"
    elif isinstance(own.get("first_mismatch"), dict):
        first = own["first_mismatch"]
        text = f"[bold red]MISMATCH at height {first.get('height')} ({first.get('what')})[/]"
    else:
        text = f"ok, verified up to height {own.get('last_verified_height')}"
    if result.node_error:
        text += f"\nlast error: {result.node_error}"
    return text


def _audit_table(result: audit.AuditResult) -> Table:
    report = result.report
    table = Table(
        title=f"{result.chain_id} at {result.node_url}", show_header=False, title_justify="left"
    )
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row(
        "verification chain",
        f"{result.rpc_url}\ncontract {result.contract}, finality {result.finality}",
    )
    table.add_row(
        "anchors",
        f"{report.anchors_total} ({report.anchors_final} final, {report.anchors_pending} pending)",
    )
    invalid = ", ".join(map(str, report.invalid_anchors))
    table.add_row("invalid anchors", f"[bold red]{invalid}[/]" if invalid else "none")
    verified = report.last_verified_height
    table.add_row("last verified height", "none yet" if verified < 0 else str(verified))
    if result.not_compared:
        table.add_row(
            "not compared",
            f"[yellow]{result.not_compared} anchored height(s) above the node's blocks "
            "(it is behind)[/]",
        )
    table.add_row("first mismatch", _mismatch(report.first_mismatch))
    if report.pending_mismatch is not None:
        table.add_row("pending mismatch", "[yellow]" + _mismatch(report.pending_mismatch) + "[/]")
    conflicts = "\n".join(
        f"[bold red]height {c.height}[/]: {c.anchored.block_hash.hex()} by "
        f"{c.anchored.submitter}, then {c.conflicting.block_hash.hex()} by "
        f"{c.conflicting.submitter}"
        for c in result.conflicts
    )
    table.add_row("conflicts", conflicts or "none")
    table.add_row("node's own check", _node_check(result))
    table.add_row("took", f"{result.elapsed_ms:.0f} ms")
    return table


def _verdict(result: audit.AuditResult) -> None:
    if not result.alarms and result.report.anchors_total == 0:
        console.print(
            f"[yellow]nothing of {result.chain_id!r} is anchored on {result.contract} yet[/], "
            "so nothing could be verified; its validators anchor every checkpoint_interval "
            "blocks once the chain is registered (`medchain anchor register`)"
        )
        return
    if not result.alarms:
        verified = result.report.last_verified_height
        ok(
            "every anchored block the node holds matches its anchor"
            + (f" (verified up to height {verified})" if verified >= 0 else "")
        )
        return
    for reason in result.alarms:
        console.print(f"[bold red]ALARM[/]: {reason}", highlight=False)
    console.print(
        "The node's chain or its anchors are not what the validators certified. Stop the "
        "node and run `medchain recover --home DIR`; if attackers hold the validator "
        "majority, the honest operators fork instead (`medchain fork`)."
    )


# -- recover ------------------------------------------------------------------------


@reports_errors
def recover(home: HomeOption) -> None:
    """Cut a stopped node's store back to its last anchored good block.

    The blocks up to the last one a final anchor vouches for are replayed into a new
    store; the old one is kept beside it. Started again, the node resyncs the rest."""
    require_stopped(home, "recover")
    settings = anchor_settings(home)
    genesis = read_genesis(home / GENESIS_FILE)
    report = recover_store(home, genesis, audit.contract_for(settings).anchors(genesis.chain_id))
    _show_recovery(home, genesis, report)


def _show_recovery(home: Path, genesis: Genesis, report: RecoverReport) -> None:
    ok(f"the chain store of {home} ({genesis.chain_id}) was rebuilt")
    vouched = "a final anchor vouches for it" if report.anchored else "no anchor vouches for it"
    console.print(f"old tip:        {report.old_tip}")
    console.print(f"kept height:    {report.kept_height} ({vouched})")
    console.print(f"removed blocks: {report.removed_blocks}")
    console.print(f"block hash:     {report.block_hash.hex()}")
    console.print(f"state root:     {report.state_root.hex()}")
    console.print(f"old store:      {report.backup}")
    console.print(report.note, highlight=False)
    console.print(
        f"Next: start the node (`medchain node --home {home}`). It resyncs the blocks above "
        f"{report.kept_height} from its peers and refuses any block that contradicts a "
        "final anchor; then check it with `medchain verify --node URL`."
    )


# -- fork ---------------------------------------------------------------------------


@reports_errors
def fork(
    home: HomeOption,
    out: Annotated[Path, typer.Option(help="Where to write the fork's genesis.", dir_okay=False)],
    chain_id: Annotated[
        str | None, typer.Option(help="The fork's chain id; default: <old>-fork-<height>.")
    ] = None,
    keep: Annotated[
        list[str] | None, typer.Option(help="NAME of an old validator that stays; repeat.")
    ] = None,
    add: Annotated[
        list[str] | None, typer.Option(help="NAME=NODEKEY of a new validator; repeat.")
    ] = None,
    height: Annotated[
        int | None,
        typer.Option(
            min=0, max=MAX_INT, help="Fork from this anchored height; default: the highest."
        ),
    ] = None,
    time_ms: Annotated[
        int | None, typer.Option(min=0, max=MAX_INT, help="The fork's genesis time (Unix ms).")
    ] = None,
) -> None:
    """Write a hard fork's genesis from this node's last anchored good block.

    For when attackers hold the validator majority (restoring the old chain would
    hand it back to them): the fork carries the state a final anchor vouches for and
    is run by the validators named."""
    if out.exists():
        raise MedchainError(f"{out} already exists; choose another --out")
    if chain_id is not None:
        chain_id_arg(chain_id)
    settings = anchor_settings(home)
    genesis = read_genesis(home / GENESIS_FILE)
    validators = fork_validators(genesis, keep or [], add or [])
    new = fork_home(
        home,
        genesis,
        audit.contract_for(settings).anchors(genesis.chain_id),
        validators=validators,
        chain_id=chain_id,
        height=height,
        time_ms=wall_clock_ms() if time_ms is None else time_ms,
    )
    write_genesis(out, new)
    _show_fork(home, out, genesis, new)


def _show_fork(home: Path, out: Path, parent: Genesis, fork_: Genesis) -> None:
    origin = fork_.origin
    assert origin is not None
    ok(f"genesis of the fork {fork_.chain_id!r} written to {out}")
    console.print(f"forks:       {origin.chain_id} at height {origin.height}")
    console.print(f"block hash:  {origin.block_hash.hex()}")
    console.print(f"state root:  {origin.state_root.hex()} ({len(fork_.state)} entries)")
    console.print(f"validators:  {len(fork_.validators)}")
    old = {v.public_key for v in parent.validators}
    for v in fork_.validators:
        kept = "kept" if v.public_key in old else "new"
        console.print(f"  {v.name:16} {v.public_key.hex()}  {kept}")
    new = {v.public_key for v in fork_.validators}
    left = [v.name for v in parent.validators if v.public_key not in new]
    if left:
        console.print(f"left out:    {', '.join(left)} (banned on the fork)")
    console.print(f"network id:  {network_id(fork_)}")
    console.print("Next steps:")
    console.print(
        f"  1. send {out} to the other honest operators; each compares the network id "
        f"(`medchain genesis show {out}`)"
    )
    console.print(
        f"  2. register {fork_.chain_id!r} on the anchor contract: `medchain anchor register "
        f"--home {home} --chain-id {fork_.chain_id} --submitter ETHADDR ...` (the new "
        "validators' Ethereum addresses)"
    )
    console.print(
        f"  3. on every node of the fork: stop it, `medchain node adopt-genesis --home DIR "
        f"--genesis {out.name} --drop-peer NAME ...` (the peers left out), start it"
    )


# -- adopt-genesis ------------------------------------------------------------------


@reports_errors
def adopt_genesis(
    home: HomeOption,
    genesis: Annotated[
        Path, typer.Option("--genesis", help="The fork's genesis.json.", dir_okay=False)
    ],
    drop_peer: Annotated[
        list[str] | None, typer.Option(help="NAME of a peer to remove from config.json; repeat.")
    ] = None,
) -> None:
    """Move a stopped node to a forked chain.

    Its chain store, consensus WAL and old genesis go to HOME/archive-<old chain id>/
    (record blobs stay), the new genesis is installed and the peers named are dropped
    from config.json. Started again, the node runs the fork."""
    done = adopt_fork(home, genesis, set(drop_peer or []))
    new = done.genesis
    ok(f"{home} now runs {new.chain_id!r} (network id {network_id(new)})")
    if done.archive is not None:
        console.print(f"old chain kept in {done.archive}")
    if done.dropped:
        console.print(f"peers removed: {', '.join(done.dropped)}; {done.peers_left} left")
    console.print(
        f"Next: start the node (`medchain node --home {home}`); once "
        f"{new.chain_id!r} is registered on the anchor contract (`medchain anchor "
        "register`), its validators anchor it."
    )


# -- anchor register ----------------------------------------------------------------


def _submitters(specs: list[str]) -> list[str]:
    bad = [s for s in specs if not is_address(s)]
    if bad:
        raise MedchainError(
            f"--submitter {', '.join(bad)}: not an Ethereum address (0x and 40 hex digits)"
        )
    found = [str(to_checksum_address(s)) for s in specs]
    if len(set(found)) < len(found):
        raise MedchainError("an address is given twice in --submitter")
    return found


@reports_errors
def anchor_register(
    home: HomeOption,
    submitter: Annotated[
        list[str], typer.Option(help="Ethereum address allowed to anchor (a validator's); repeat.")
    ],
    chain_id: Annotated[
        str | None, typer.Option(help="The chain to register; default: the node's genesis.")
    ] = None,
) -> None:
    """Register the node's chain on the anchor contract.

    The node's eth.key becomes the chain's admin and the addresses given the only ones
    allowed to anchor it (a fork's new chain id must be registered before its
    validators can anchor)."""
    settings = anchor_settings(home)
    target = chain_id or read_genesis(home / GENESIS_FILE).chain_id
    allowed = _submitters(submitter)
    client = audit.contract_for(settings, home, send=True)
    try:
        tx = client.register_chain(target, allowed)
    except AnchorRejected as exc:
        if exc.reason != "chain already registered":
            raise
        audit.amend(
            exc,
            f"{target!r} is already registered on the anchor contract {client.address}; its "
            "admin (the eth.key that registered it) may replace the submitters",
        )
        raise
    admin = client.account.address if client.account is not None else "?"
    ok(f"{target!r} registered on the anchor contract {client.address} (tx 0x{tx.hex()})")
    console.print(f"admin:      {admin} ({settings.key_path(home)})")
    for address in allowed:
        console.print(f"submitter:  {address}")
    console.print(
        "Its validators anchor once their nodes run with anchor.enabled and their eth.key "
        "addresses are among these submitters, funded for gas."
    )


@reports_errors
def anchor_key(home: HomeOption) -> None:
    """Create the node's Ethereum key (HOME/eth.key, readable by its owner only) and
    print its address, or print the address of the key already there.

    A validator sends its anchors from this account: send it ether for gas on the
    verification chain, and give its address to whoever registers the chain."""
    from medchain.anchor import ETH_KEY_FILE, load_eth_key, new_eth_key

    path = home / ETH_KEY_FILE
    if path.exists():
        account = load_eth_key(path)
        console.print(f"{path} already holds the key of {account.address}")
    else:
        account = new_eth_key(path)
        ok(f"new Ethereum key in {path}")
    console.print(f"address: {account.address}")
