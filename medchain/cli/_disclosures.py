"""`medchain record disclosures`: who read a patient's data, when, through which node
and for which purpose, each node's log checked against its commitments on chain; and
`medchain node check-disclosures`: an operator's check of a data directory's log."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.table import Table

from medchain.app import PURPOSE_DISPLAY, PurposeOfUse
from medchain.cli._common import (
    Chain,
    address_arg,
    console,
    err_console,
    load_key_file,
    ok,
    on_chain,
    open_node,
    record_id_arg,
    reports_errors,
)
from medchain.cli._options import PatientKeyOption
from medchain.client import (
    DisclosureAudit,
    HttpChain,
    NodeDisclosures,
    SeenDisclosure,
    all_entries,
    default_connect,
    head_commits_from,
)
from medchain.crypto import address_from_public_key, format_address, load_keys
from medchain.node import DISCLOSURES_FILE, NODE_KEY_FILE, check_log_file, read_config
from medchain.types import MedchainError


def _when(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _purpose(code: str) -> str:
    try:
        return PURPOSE_DISPLAY[PurposeOfUse(code)]
    except ValueError:
        return code


class Names:
    """Addresses as a patient reads them: 'you', a registered name, a credential's."""

    def __init__(self, chain: HttpChain, me: bytes) -> None:
        self.chain = chain
        self.me = me
        self.validators = {
            address_from_public_key(v.public_key): v.name for v in chain.genesis.validators
        }
        self._known: dict[bytes, str] = {}

    def __call__(self, address: bytes) -> str:
        if address == self.me:
            return "you"
        if address in self.validators:
            return self.validators[address]
        if address not in self._known:
            self._known[address] = self._look_up(address)
        return self._known[address]

    def _look_up(self, address: bytes) -> str:
        identity = self.chain.identity(address)
        if identity is not None and identity.name:
            return identity.name
        gateway = self.chain.gateway(address)
        if gateway is not None:
            return gateway.label or format_address(address)
        for credential in self.chain.credentials_of(address):
            return f"{credential.name} ({credential.org_id})"
        return format_address(address)


def _what(seen: SeenDisclosure) -> str:
    read = seen.read
    what = read.kind.value
    if read.record_id:
        what += f" of {read.record_id.hex()[:12]}…"
        what += f" v{read.version}" if read.version else ""
    return what + (f" ({read.detail})" if read.detail else "")


def _table(reports: list[NodeDisclosures], name: Names) -> Table:
    table = Table("when", "who", "read", "purpose", "through", "checked", title="disclosures")
    for report, seen in all_entries(reports):
        read = seen.read
        who = name(read.reader) + (f" for {name(read.on_behalf)}" if read.on_behalf else "")
        if report.disagreement:
            checked = f"NO: log disagrees at #{report.disagreement}"
        else:
            checked = "not yet committed" if seen.seq > report.committed_seq else "verified"
        table.add_row(
            _when(read.time_ms),
            who,
            _what(seen),
            _purpose(read.purpose),
            f"{name(report.node)} #{seen.seq}",
            checked,
        )
    return table


def _node_line(report: NodeDisclosures, name: Names) -> str:
    kind = "gateway " if report.gateway else ""
    where = f"{kind}{name(report.node)} ({report.api_url})"
    if report.error:
        return f"{where}: could not be asked: {report.error}"
    if report.disagreement:
        return (
            f"{where}: its log DISAGREES with the head it committed on chain at entry "
            f"#{report.disagreement}; it may have changed or hidden reads"
        )
    return f"{where}: {len(report.entries)} read(s), log verified up to #{report.committed_seq}"


@on_chain
def record_disclosures(
    where: Chain,
    key: PatientKeyOption,
    record_id: Annotated[str, typer.Argument(help="Only this record's reads.")] = "",
    patient: Annotated[
        str, typer.Option(help="The patient you read for as their proxy (default: you).")
    ] = "",
) -> None:
    """Who read your data (or one record's), when, through which node and for which
    purpose: every node and edge gateway that committed its log on chain is asked, and
    its answer is checked against what it committed. Exits 1 if a log disagrees."""
    if where.data is not None:
        raise MedchainError(
            "disclosures are kept by the nodes that serve reads; ask a node with --node URL"
        )
    keys = load_key_file(key)
    raw_record = record_id_arg(record_id) if record_id else b""
    whose = address_arg(patient) if patient else keys.address
    with open_node(where.node) as chain:
        audit = DisclosureAudit(keys, chain.chain_id, where.node, default_connect)
        reports = audit.disclosures(whose, raw_record)
        name = Names(chain, keys.address)
        if not reports:
            console.print("no node has committed a disclosure log on this chain yet")
            return
        console.print(_table(reports, name))
        for report in reports:
            line = _node_line(report, name)
            (console if report.verified else err_console).print(line, markup=False)
    if any(r.disagreement for r in reports):
        raise typer.Exit(1)


@reports_errors
def check_disclosures(
    home: Annotated[
        Path, typer.Option("--home", help="The node's home directory.", file_okay=False)
    ],
    node: Annotated[
        str, typer.Option(help="A node to read the chain's commitments from (default: this one).")
    ] = "",
) -> None:
    """Check this node's disclosure log, every entry rehashed, against the heads it
    committed on chain. Exits 1 if they disagree."""
    account = load_keys(home / NODE_KEY_FILE).address
    url = node or read_config(home).api_url
    try:
        with default_connect(url) as http:
            commits = head_commits_from(http, account)
    except httpx.HTTPError as exc:
        raise MedchainError(f"cannot ask {url} for the commitments ({exc}); check --node") from None
    entries, disagreement = check_log_file(
        home / DISCLOSURES_FILE, [(c.seq, c.head) for c in commits]
    )
    last = commits[-1].seq if commits else 0
    if disagreement:
        err_console.print(
            f"the log in {home} DISAGREES with the head {format_address(account)} committed for "
            f"entry #{disagreement}: it was changed, truncated or replaced after it was committed",
            markup=False,
        )
        raise typer.Exit(1)
    ok(f"{entries} entries; {len(commits)} commitment(s) up to #{last} agree with the log")
