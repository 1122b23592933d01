"""The user-facing commands: keys, registry, records, research, tokens and staking."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from medchain.app import AuditAction, AuditEntry, Role
from medchain.cli._common import (
    Chain,
    address_arg,
    chain_id_arg,
    console,
    create_chain,
    load_key_file,
    ok,
    on_chain,
    open_chain,
    open_node,
    patient_arg,
    record_id_arg,
    reports_errors,
    role_arg,
    show_address,
    show_expiry,
)
from medchain.cli._consent import ExpiresOption, PurposeOption, expires_arg, purposes_arg
from medchain.cli._erase import show_erased
from medchain.cli._options import (
    DEFAULT_DATA,
    MAX_INT,
    FhirFileOption,
    InitDataOption,
    KeyOption,
    PatientOption,
    ReadPurposeOption,
    count,
)
from medchain.client import EmergencyChain, MedchainClient, set_up_emergency_policy
from medchain.crypto import (
    MIN_PASSPHRASE_CHARS,
    AccountKeys,
    address_from_public_key,
    check_new_passphrase,
    format_address,
    save_keys,
)
from medchain.node import ADMIN_KEY_FILE, ORG_KEY_FILE, ORGS_DIR, NodeStatus, PeerStatus
from medchain.types import MedchainError

MAX_VERSION = 2**32 - 1
"""Record versions are numbered in four bytes on chain."""


# -- chain ------------------------------------------------------------------------------


@reports_errors
def init(
    data: InitDataOption = DEFAULT_DATA,
    chain_id: Annotated[str, typer.Option(help="Chain id for the new chain.")] = "medchain-local",
) -> None:
    """Create a new single-validator local chain in DATA."""
    chain = create_chain(data, chain_id_arg(chain_id))
    ok(f"chain {chain.chain_id!r} created in {data}")
    console.print(f"validator address: {show_address(chain.validator.address)}")
    console.print(
        f"founding organisations' key files: {data / ORGS_DIR}/<org_id>/{ADMIN_KEY_FILE}, "
        f"{ORG_KEY_FILE}"
    )
    chain.close()


@on_chain
def status(where: Chain) -> None:
    """The node's height, round, primary, peers and mempool (or, with --data, the
    local chain's height, latest block and state root)."""
    if where.data is not None:
        with open_chain(where.data, create=False) as local:
            block = local.latest_block()
            console.print(f"chain:      {local.chain_id}")
            console.print(f"height:     {block.height}")
            console.print(f"block hash: {block.certificate.block_hash.hex()}")
            console.print(f"state root: {block.header.state_root.hex()}")
        return
    with open_node(where.node) as remote:
        current = remote.status()
        names = {v.public_key: v.name for v in remote.genesis.validators}
    console.print(node_status_table(current, where.node, names))
    if current.peers:
        console.print(peers_table(current.peers))


def node_status_table(status: NodeStatus, url: str, names: dict[bytes, str]) -> Table:
    """A node's status; `names` shows validator keys by their genesis names."""

    def who(key: bytes | None) -> str:
        if key is None:
            return "-"
        address = show_address(address_from_public_key(key))
        return f"{names[key]} ({address})" if key in names else address

    connected = sum(p.connected for p in status.peers)
    started = datetime.fromtimestamp(status.started_ms / 1000, UTC)
    table = Table(title=f"node {status.name} at {url}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for label, value in (
        ("chain", status.chain_id),
        ("consensus", status.consensus),
        ("role", "validator" if status.validator else "observer"),
        ("height", str(status.height)),
        ("latest block", status.latest_hash.hex()),
        ("block time", _utc(status.latest_time_ms)),
        ("state root", status.state_root.hex()),
        ("round", f"{status.round} ({status.round_changes} round changes since start)"),
        ("primary", who(status.primary)),
        ("syncing", "yes" if status.syncing else "no"),
        ("peers", f"{connected} of {len(status.peers)} connected"),
        ("mempool", f"{status.mempool_txs} txs, {status.mempool_bytes:,} bytes"),
        ("started", started.strftime("%Y-%m-%d %H:%M:%S UTC")),
        ("anchors", _anchors_line(status)),
    ):
        table.add_row(label, value)
    return table


def _anchors_line(status: NodeStatus) -> str:
    if status.anchor_alarm:
        return f"[bold red]ALARM[/] {status.anchor_alarm} (see `medchain verify`)"
    if status.anchor_verified_height is None:
        return "not anchored (or not checked yet)"
    return f"verified up to height {status.anchor_verified_height}"


def peers_table(peers: tuple[PeerStatus, ...]) -> Table:
    table = Table("peer", "key", "address", "connected", "validator", title="peers")
    for peer in peers:
        table.add_row(
            peer.name,
            peer.key.hex()[:16],
            peer.address or "(dials in)",
            "[green]yes[/]" if peer.connected else "[red]no[/]",
            "yes" if peer.validator else "no",
        )
    return table


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


@on_chain
def account(where: Chain, address: str) -> None:
    """Balance, nonce, identity and stake of an address."""
    raw = address_arg(address)
    with where.backend() as chain:
        acct = chain.account(raw)
        identity = chain.identity(raw)
        stake = chain.stake(raw)
        console.print(f"address: {address}")
        console.print(f"balance: {acct.balance}   nonce: {acct.nonce}")
        if identity is None:
            console.print("identity: not registered")
        else:
            name = identity.name or "(sealed profile)"  # as registered: no markup
            console.print(f"identity: {identity.role.value} — {name}", markup=False)
        console.print(f"stake: bonded {stake.bonded}, voting {stake.voted}")


# -- keys ---------------------------------------------------------------------------------


@reports_errors
def keys_new(
    out: Annotated[
        Path, typer.Option("--out", help="Where to write the new key file.", dir_okay=False)
    ],
    encrypt: Annotated[
        bool, typer.Option(help="Protect the key file with a passphrase (asked twice).")
    ] = False,
) -> None:
    """Create an account key file and print its address (never the private key)."""
    passphrase = None
    if encrypt:
        passphrase = typer.prompt(
            f"Passphrase (at least {MIN_PASSPHRASE_CHARS} characters)",
            hide_input=True,
            confirmation_prompt=True,
            value_proc=_new_passphrase,
        )
    keys = AccountKeys.generate()
    save_keys(out, keys, passphrase=passphrase)
    console.print(keys.address_text)


def _new_passphrase(text: str) -> str:
    """A passphrase long enough for a new key file: refused before it is asked again
    for confirmation (WeakPassphrase, one line saying how long it must be)."""
    check_new_passphrase(text)
    return text


@reports_errors
def keys_show(key: KeyOption) -> None:
    """Print the address and public keys of a key file."""
    keys = load_key_file(key)
    console.print(f"address:        {keys.address_text}")
    console.print(f"signing key:    {keys.public_key.hex()}")
    console.print(f"encryption key: {keys.encryption_public_key.hex()}")


# -- registry -----------------------------------------------------------------------------


@on_chain
def register(
    where: Chain,
    key: KeyOption,
    role: Annotated[str, typer.Option(help="patient, doctor, institution, device or validator")],
    name: Annotated[str, typer.Option(help="Display name (sealed to you if you are a patient).")],
    emergency: Annotated[
        bool,
        typer.Option(
            "--emergency/--no-emergency",
            help="A patient's break-glass, on by default: your emergency key split among the "
            "member organisations (when there are at least two), so that a credentialed "
            "clinician can open your allergies, medications, conditions, immunizations and "
            "blood group once enough organisations answer, on the public audit. "
            "--no-emergency opts out.",
        ),
    ] = True,
) -> None:
    """Register your account with a role (a patient also gets an emergency policy)."""
    parsed = role_arg(role)
    with where.client(key, create=True) as client:
        client.register(parsed, name)
        emergency_note = (
            _emergency_by_default(client) if emergency and parsed is Role.PATIENT else ""
        )
    ok(f"{client.keys.address_text} registered as {parsed.value}{emergency_note}")


def _emergency_by_default(client: MedchainClient) -> str:
    """Turn a new patient's break-glass on when at least two member organisations can
    share the key (one alone would hold it whole); what was done, for the message."""
    chain = client.chain
    members = len(chain.member_organisations()) if isinstance(chain, EmergencyChain) else 0
    if members < 2:
        return "; no emergency policy: the chain has fewer than two member organisations"
    set_up_emergency_policy(client)
    policy = chain.emergency_policy(client.address)
    threshold = 0 if policy is None else policy.threshold
    return f"; emergency access on (any {threshold} of {members} organisations answer)"


@on_chain
def transfer(
    where: Chain,
    key: KeyOption,
    to: Annotated[str, typer.Option(help="Recipient address.")],
    amount: Annotated[int, count("Tokens to send.", high=MAX_INT)],
) -> None:
    """Send tokens."""
    with where.client(key, create=True) as client:
        client.transfer(address_arg(to), amount)
    ok(f"sent {amount} to {to}")


# -- records -----------------------------------------------------------------------------


@on_chain
def record_put(
    where: Chain,
    key: KeyOption,
    patient: Annotated[str, typer.Option(help="Address of the patient who will own the record.")],
    file: FhirFileOption,
    reader: Annotated[
        list[str] | None, typer.Option("--reader", help="Also authorise this address (repeatable).")
    ] = None,
    keyword: Annotated[
        list[str] | None,
        typer.Option("--keyword", help="Index it under this keyword in your encrypted index."),
    ] = None,
    pad: Annotated[bool, typer.Option("--pad", help="Pad keyword counts (see `index`).")] = False,
) -> None:
    """Encrypt a FHIR resource for the patient and readers and put it on chain; prints its id."""
    resource = _read_file(file)
    readers = [address_arg(r) for r in reader or []]
    with where.client(key, create=True) as client:
        record_id = client.put_record(
            address_arg(patient), resource, readers, keywords=keyword or (), pad=pad
        )
    console.print(record_id.hex())


@on_chain
def record_get(
    where: Chain,
    key: KeyOption,
    record_id: str,
    version: Annotated[
        int | None, typer.Option(min=1, max=MAX_VERSION, help="Version number (default latest).")
    ] = None,
    purpose: ReadPurposeOption = None,
) -> None:
    """Decrypt and print a record you are authorised to read."""
    with where.client(key, purpose=purpose) as client:
        resource = client.read_record(record_id_arg(record_id), version)
    console.print_json(json.dumps(resource))


@on_chain
def record_update(
    where: Chain,
    key: KeyOption,
    record_id: str,
    file: Annotated[
        Path, typer.Option("--file", help="The new FHIR R4 resource (JSON).", dir_okay=False)
    ],
) -> None:
    """Add a new version, encrypted under a fresh key for the owner and current readers."""
    with where.client(key) as client:
        number = client.add_version(record_id_arg(record_id), _read_file(file))
    ok(f"version {number} of {record_id} recorded")


@on_chain
def record_grant(
    where: Chain,
    key: KeyOption,
    record_id: str,
    reader: Annotated[str, typer.Option(help="Address to authorise.")],
    purpose: PurposeOption = None,
    expires: ExpiresOption = None,
) -> None:
    """Owner: authorise a reader (warrant), for purposes of use, until an expiry."""
    purposes, expires_ms = purposes_arg(purpose), expires_arg(expires)
    with where.client(key) as client:
        client.grant(record_id_arg(record_id), address_arg(reader), purposes, expires_ms)
    ok(f"{reader} may now read {record_id}, {show_expiry(expires_ms)}")


@on_chain
def record_revoke(
    where: Chain,
    key: KeyOption,
    record_id: str,
    reader: Annotated[str, typer.Option(help="Address to revoke.")],
) -> None:
    """Owner: revoke a reader (unwarrant); later versions are re-keyed without them."""
    with where.client(key) as client:
        client.revoke(record_id_arg(record_id), address_arg(reader))
    ok(f"{reader} revoked from {record_id}")


@on_chain
def record_show(where: Chain, record_id: str) -> None:
    """Public metadata of a record: owner, author, type, readers, versions."""
    raw = record_id_arg(record_id)
    with where.backend() as chain:
        record = chain.record(raw)
        if record is None:
            raise MedchainError(f"no record {record_id} on this chain; check the id")
        console.print(f"record:   {record_id}  ({record.resource_type})")
        console.print(f"owner:    {show_address(record.owner)}")
        console.print(f"author:   {show_address(record.author)}")
        console.print(f"readers:  {', '.join(show_address(r) for r in record.readers) or '-'}")
        show_erased(record)
        # from the public audit trail: a node serves the versions' CIDs and wraps to
        # their readers only (`record get`)
        for entry in chain.audit(raw):
            if entry.action in (AuditAction.CREATED, AuditAction.VERSIONED):
                console.print(f"version {entry.version}: height {entry.height}")


@on_chain
def record_list(where: Chain, patient: PatientOption) -> None:
    """The patient's records, oldest first (the RC's append-only list)."""
    with where.backend() as chain:
        for record_id in chain.patient_records(patient_arg(chain, patient)):
            record = chain.record(record_id)
            assert record is not None
            erased = "  erased" if record.erased_height else ""
            console.print(
                f"{record_id.hex()}  {record.resource_type}  v{record.version_count}{erased}"
            )


@on_chain
def record_audit(where: Chain, record_id: str) -> None:
    """The record's audit trail: creation, grants, revokes, versions, research access."""
    raw = record_id_arg(record_id)
    with where.backend() as chain:
        if chain.record(raw) is None:
            raise MedchainError(f"no record {record_id} on this chain; check the id")
        console.print(audit_table(chain.audit(raw)))


def audit_table(entries: list[AuditEntry], names: dict[bytes, str] | None = None) -> Table:
    """The trail as a table; `names` shows known addresses by name."""
    known = names or {}

    def who(address: bytes) -> str:
        return known.get(address) or format_address(address) if address else ""

    table = Table("#", "height", "action", "by", "concerning", "version", title="audit trail")
    for entry in entries:
        table.add_row(
            str(entry.seq),
            str(entry.height),
            entry.action.value,
            who(entry.actor) + (f" for {who(entry.on_behalf)}" if entry.on_behalf else ""),
            who(entry.subject),
            str(entry.version),
        )
    return table


# -- research ----------------------------------------------------------------------------


@on_chain
def research_grant(
    where: Chain,
    key: KeyOption,
    record_id: str,
    institution: Annotated[str, typer.Option(help="Research institution's address.")],
) -> None:
    """Owner: give an institution a de-identified copy of a record."""
    with where.client(key) as client:
        client.research_grant(record_id_arg(record_id), address_arg(institution))
    ok(f"de-identified copy of {record_id} shared with {institution}")


@on_chain
def research_revoke(
    where: Chain,
    key: KeyOption,
    record_id: str,
    institution: Annotated[str, typer.Option(help="Research institution's address.")],
) -> None:
    """Owner: take a record off an institution's research access list."""
    with where.client(key) as client:
        client.research_revoke(record_id_arg(record_id), address_arg(institution))
    ok(f"{record_id} withdrawn from {institution}")


@on_chain
def research_data(where: Chain, key: KeyOption, purpose: ReadPurposeOption = None) -> None:
    """Institution: print the de-identified records it may read."""
    with where.client(key, purpose=purpose) as client:
        items = client.research_data()
    console.print_json(
        json.dumps([{"record": i.entry.record_id.hex(), "resource": i.resource} for i in items])
    )


# -- staking -----------------------------------------------------------------------------


@on_chain
def staking_stake(
    where: Chain,
    key: KeyOption,
    amount: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="Tokens to bond.")],
) -> None:
    """Bond tokens."""
    with where.client(key, create=True) as client:
        client.stake(amount)
    ok(f"bonded {amount}")


@on_chain
def staking_unstake(
    where: Chain,
    key: KeyOption,
    amount: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="Tokens to unbond.")],
) -> None:
    """Start unbonding tokens (spendable after the unbonding delay)."""
    with where.client(key, create=True) as client:
        client.unstake(amount)
    ok(f"unbonding {amount}")


@on_chain
def staking_withdraw(where: Chain, key: KeyOption) -> None:
    """Return unbonded tokens to the balance."""
    with where.client(key, create=True) as client:
        client.withdraw()
    ok("withdrawn")


@on_chain
def staking_candidate(where: Chain, key: KeyOption) -> None:
    """Declare your (validator) account a candidate for election."""
    with where.client(key, create=True) as client:
        client.declare_candidate()
    ok("declared candidate")


@on_chain
def staking_vote(
    where: Chain,
    key: KeyOption,
    candidate: Annotated[str, typer.Option(help="Candidate address.")],
    amount: Annotated[int, count("Bonded tokens to vote with.", high=MAX_INT)],
) -> None:
    """Vote for a candidate with bonded stake."""
    with where.client(key, create=True) as client:
        client.vote(address_arg(candidate), amount)
    ok(f"voted {amount} for {candidate}")


@on_chain
def staking_unvote(
    where: Chain,
    key: KeyOption,
    candidate: Annotated[str, typer.Option(help="Candidate address.")],
    amount: Annotated[int, count("Tokens to withdraw from the vote.", high=MAX_INT)],
) -> None:
    """Withdraw votes from a candidate."""
    with where.client(key, create=True) as client:
        client.unvote(address_arg(candidate), amount)
    ok(f"withdrew {amount} from {candidate}")


@on_chain
def staking_candidates(where: Chain) -> None:
    """Candidates in election order."""
    with where.backend() as chain:
        table = Table("rank", "candidate", "name", "votes")
        for rank, cand in enumerate(chain.candidates(), start=1):
            identity = chain.identity(cand.address)
            table.add_row(
                str(rank),
                show_address(cand.address),
                Text(identity.name) if identity else "",  # as registered: no markup
                str(cand.votes),
            )
        console.print(table)


def _read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise MedchainError(f"cannot read {path}: {exc.strerror}") from exc
