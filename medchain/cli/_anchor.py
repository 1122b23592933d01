"""The dual chain's tools (paper 003): `medchain verify` (the auditor's active check
of a node against its anchors), `medchain recover` (cut a node's store back to its
last anchored good block), `medchain fork` (a new genesis from that block, for when
attackers hold the validator majority), `medchain node adopt-genesis` (a stopped
node moves to the fork) and `medchain anchor register` (the fork's chain id on the
anchor contract, so its validators can anchor).

Every Ethereum client comes from `_audit.contract_for`, which tests replace."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Annotated

import typer
from eth_utils.address import is_address, to_checksum_address
from rich.table import Table

from medchain.anchor import (
    MAX_CHAIN_ID_BYTES,
    Anchor,
    AnchorRejected,
    AnchorSettings,
    Mismatch,
    anchor_is_valid,
    verify_store,
)
from medchain.app import genesis_state
from medchain.cli import _audit as audit
from medchain.cli._common import (
    chain_id_arg,
    console,
    ok,
    reports_errors,
)
from medchain.cli._options import DEFAULT_NODE, MAX_INT
from medchain.consensus import quorum_size
from medchain.node import (
    CONFIG_FILE,
    GENESIS_FILE,
    STORE_FILE,
    WAL_FILE,
    ForkError,
    NodeRunning,
    RecoverReport,
    fork_genesis,
    genesis_hash,
    network_id,
    read_config,
    read_genesis,
    read_pid,
    recover_store,
    wall_clock_ms,
    write_config,
    write_genesis,
)
from medchain.store import ChainStore
from medchain.types import Genesis, GenesisValidator, MedchainError

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


# -- a node's home ------------------------------------------------------------------


def _settings(home: Path) -> AnchorSettings:
    section = read_config(home).extra.get("anchor")
    if section is None:
        raise MedchainError(
            f"{home / CONFIG_FILE} has no anchor section, so this node has no verification "
            "chain to read its anchors from; add one (rpc_url, eth_chain_id, contract: see "
            "a devnet node's config.json)"
        )
    return AnchorSettings.from_json(section)


def _require_stopped(home: Path, then: str) -> None:
    pid = read_pid(home)
    if pid is not None:
        raise NodeRunning(
            f"the node of {home} is running (pid {pid}); stop it first (Ctrl-C or SIGTERM, "
            f"or `medchain devnet down` for a devnet), then {then} again"
        )


def _anchors(settings: AnchorSettings, chain_id: str) -> list[Anchor]:
    return audit.contract_for(settings).anchors(chain_id)


# -- recover ------------------------------------------------------------------------


@reports_errors
def recover(home: HomeOption) -> None:
    """Cut a stopped node's store back to its last anchored good block.

    The blocks up to the last one a final anchor vouches for are replayed into a new
    store; the old one is kept beside it. Started again, the node resyncs the rest."""
    _require_stopped(home, "recover")
    settings = _settings(home)
    genesis = read_genesis(home / GENESIS_FILE)
    report = recover_store(home, genesis, _anchors(settings, genesis.chain_id))
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


def _fork_validators(
    genesis: Genesis, keep: list[str], add: list[str]
) -> tuple[GenesisValidator, ...]:
    by_name = {v.name: v for v in genesis.validators}
    unknown = [name for name in keep if name not in by_name]
    if unknown:
        raise MedchainError(
            f"--keep {', '.join(unknown)}: not a validator of {genesis.chain_id!r}; its "
            f"validators are {', '.join(by_name)}"
        )
    chosen = [by_name[name] for name in keep]
    for spec in add:
        name, sep, hex_key = spec.rpartition("=")
        try:
            key = bytes.fromhex(hex_key.strip())
        except ValueError:
            key = b""
        if not sep or not name.strip() or len(key) != 32:
            raise MedchainError(f"--add {spec!r}: expected NAME=NODEKEY (64 hex digits)")
        chosen.append(GenesisValidator(key, name.strip()))
    if not chosen:
        raise MedchainError(
            "name the fork's validators: --keep NAME for a validator of the old chain that "
            "stays honest, --add NAME=NODEKEY for a new one (repeat either)"
        )
    if len({v.name for v in chosen}) < len(chosen):
        raise MedchainError("a validator name is given twice in --keep/--add")
    if len({v.public_key for v in chosen}) < len(chosen):
        raise MedchainError("a validator key is given twice in --keep/--add")
    return tuple(chosen)


def _fork_anchor(home: Path, genesis: Genesis, anchors: list[Anchor], height: int | None) -> Anchor:
    """The final, valid anchor to fork from: the highest one this node's store matches
    with its whole chain intact below it, or the one at `height` under it."""
    path = home / STORE_FILE
    if not path.is_file():
        raise ForkError(f"{home} has no chain store ({STORE_FILE}); fork from a node that has one")
    keys = tuple(v.public_key for v in genesis.validators)
    report = verify_store(path, anchors, keys, chain_id=genesis.chain_id)
    top = report.last_verified_height
    if top < 0:
        why = (
            f"the stored chain is wrong from height {report.first_mismatch.height}: "
            f"{report.first_mismatch.what}"
            if report.first_mismatch is not None
            else f"{report.anchors_final} of {report.anchors_total} anchors are final"
        )
        raise ForkError(
            f"no final, valid anchor of {genesis.chain_id!r} matches this node's chain ({why}); "
            "wait for an anchor to be final, or `medchain recover` and resync first"
        )
    target = top if height is None else height
    if target > top:
        raise ForkError(
            f"--height {target} is above {top}, the highest anchored height this node's chain "
            "is verified to; fork from that height or below"
        )
    quorum = quorum_size(len(keys))
    found = [
        a for a in anchors if a.height == target and a.final and anchor_is_valid(a, keys, quorum)
    ]
    if not found:
        raise ForkError(f"there is no final, valid anchor at height {target}; pick another")
    return min(found, key=lambda a: a.eth_block)


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
    settings = _settings(home)
    genesis = read_genesis(home / GENESIS_FILE)
    validators = _fork_validators(genesis, keep or [], add or [])
    anchor = _fork_anchor(home, genesis, _anchors(settings, genesis.chain_id), height)
    new_id = chain_id or f"{genesis.chain_id}-fork-{anchor.height}"
    if len(new_id.encode("utf-8")) > MAX_CHAIN_ID_BYTES:
        raise MedchainError(
            f"the chain id {new_id!r} is longer than the anchor contract's "
            f"{MAX_CHAIN_ID_BYTES} bytes; pass a shorter --chain-id"
        )
    with ChainStore(
        home / STORE_FILE, chain_id=genesis.chain_id, genesis_hash=genesis_hash(genesis)
    ) as store:
        new = fork_genesis(
            store,
            genesis,
            anchor,
            chain_id=new_id,
            validators=validators,
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

_SIDE_FILES = ("", "-wal", "-shm")


def _archive_dir(home: Path, chain_id: str) -> Path:
    candidate = home / f"archive-{chain_id}"
    n = 1
    while candidate.exists():
        candidate = home / f"archive-{chain_id}.{n}"
        n += 1
    return candidate


def _archive(home: Path, chain_id: str) -> Path:
    """Move the old chain's files out of the way (the node would refuse a store of
    another genesis, and its signing record belongs to the old chain)."""
    archive = _archive_dir(home, chain_id)
    archive.mkdir()
    names = [f"{base}{suffix}" for base in (STORE_FILE, WAL_FILE) for suffix in _SIDE_FILES]
    names += [p.name for p in home.glob(f"{STORE_FILE}.bad-*")]  # recover's backups
    for name in [*names, GENESIS_FILE]:
        if (home / name).exists():
            (home / name).rename(archive / name)
    return archive


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
    _require_stopped(home, "adopt the genesis")
    new = read_genesis(genesis)
    genesis_state(new)  # refuses a fork whose state does not hash to its origin
    config = read_config(home)
    drop = set(drop_peer or [])
    unknown = drop - {p.name for p in config.peers}
    if unknown:
        raise MedchainError(
            f"{home / CONFIG_FILE} lists no peer {', '.join(sorted(unknown))}; its peers are "
            f"{', '.join(p.name for p in config.peers) or 'none'}"
        )
    current = home / GENESIS_FILE
    old = read_genesis(current) if current.exists() else None
    if old is not None and genesis_hash(old) == genesis_hash(new):
        raise MedchainError(f"{home} already runs the genesis in {genesis}; nothing to do")
    if old is not None and (new.origin is None or new.origin.chain_id != old.chain_id):
        forks = "is not a fork" if new.origin is None else f"forks {new.origin.chain_id!r}"
        raise MedchainError(
            f"{genesis} {forks}, not this node's chain {old.chain_id!r}; adopt only the "
            "genesis of a fork of the chain the node runs"
        )
    moved = None if old is None else _archive(home, old.chain_id)
    shutil.copyfile(genesis, current)
    config = dataclasses.replace(config, peers=tuple(p for p in config.peers if p.name not in drop))
    write_config(home, config)
    ok(f"{home} now runs {new.chain_id!r} (network id {network_id(new)})")
    if moved is not None:
        console.print(f"old chain kept in {moved}")
    if drop:
        console.print(f"peers removed: {', '.join(sorted(drop))}; {len(config.peers)} left")
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
    settings = _settings(home)
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
