"""`medchain org …`: the consortium's organisations, the proposals that change it, the
credentials its admins issue and the patients' identities they attest."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from medchain.app import (
    Credential,
    CredentialRole,
    Organisation,
    OrganisationSpec,
    OrgKind,
    Proposal,
    ProposalAction,
    approval_threshold,
)
from medchain.cli._common import (
    Chain,
    address_arg,
    choice,
    console,
    expiry_after,
    ok,
    on_chain,
    show_address,
    show_expiry,
)
from medchain.cli._options import MAX_DAYS, MAX_INT, AddressArg, key_option
from medchain.client import ChainBackend, MedchainClient, leaving, proposal_id_of
from medchain.types import MedchainError, Receipt

AdminKeyOption = Annotated[Path, key_option("Your key file: an admin's of a member organisation.")]
ReasonOption = Annotated[str, typer.Option(help="Why: kept on chain for the audit trail.")]
OrgArg = Annotated[str, typer.Argument(help="Organisation id, e.g. st-mary.", show_default=False)]


def _organisation(chain: ChainBackend, org_id: str) -> Organisation:
    found = chain.organisation(org_id)
    if found is None:
        raise MedchainError(
            f"no organisation {org_id!r} on this chain; `medchain org list` lists them"
        )
    return found


def _status(org: Organisation) -> str:
    return "member" if org.member else f"left at {org.left_height}"


@on_chain
def org_list(where: Chain) -> None:
    """Every organisation, members and former members."""
    with where.backend() as chain:
        orgs = chain.organisations()
    table = Table("id", "name", "kind", "status", "admins", title="organisations")
    for org in orgs:
        table.add_row(org.org_id, org.name, org.kind.value, _status(org), str(len(org.admins)))
    console.print(table)


@on_chain
def org_show(where: Chain, org_id: OrgArg) -> None:
    """One organisation: its account, admins and status."""
    with where.backend() as chain:
        org = _organisation(chain, org_id)
    console.print(f"organisation: {org.org_id} ({org.name})")
    console.print(f"kind:         {org.kind.value}")
    console.print(f"status:       {_status(org)} (joined at {org.joined_height})")
    console.print(f"account:      {show_address(org.account)}")
    for admin in org.admins:
        console.print(f"admin:        {show_address(admin)}")


@on_chain
def org_staff(where: Chain, org_id: OrgArg) -> None:
    """The accounts an organisation credentialed, and each credential's state."""
    with where.backend() as chain:
        _organisation(chain, org_id)
        staff = chain.staff_of(org_id)
    for credential in staff:
        console.print(_credential_line(credential), markup=False)  # names: as issued
    if not staff:
        console.print(f"{org_id} has credentialed nobody")


def _credential_line(credential: Credential) -> str:
    expiry = show_expiry(credential.expires_ms)
    return (
        f"{show_address(credential.subject)}  {credential.role.value}  {credential.name!r}  "
        f"{credential.status.value}  {expiry}"
    )


# -- proposals ------------------------------------------------------------------------


@on_chain
def org_proposals(where: Chain) -> None:
    """Every proposal to change the consortium, with its approvals and outcome."""
    with where.backend() as chain:
        proposals = chain.proposals()
        needed = approval_threshold(sum(o.member for o in chain.organisations()))
    table = Table("id", "action", "organisation", "by", "approvals", "status", title="proposals")
    for proposal in proposals:
        table.add_row(
            str(proposal.proposal_id),
            proposal.action.value,
            proposal.spec.org_id,
            proposal.proposer_org,
            f"{len(proposal.approvals)}/{needed}",
            proposal.status.value,
        )
    console.print(table)


@on_chain
def org_proposal(
    where: Chain,
    proposal_id: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="Proposal id.")],
) -> None:
    """One proposal: what it changes, why, and who approved it when."""
    with where.backend() as chain:
        proposal = chain.proposal(proposal_id)
        if proposal is None:
            raise MedchainError(
                f"no proposal {proposal_id} on this chain; `medchain org proposals` lists them"
            )
        needed = approval_threshold(sum(o.member for o in chain.organisations()))
    _print_proposal(proposal, needed)


def _print_proposal(proposal: Proposal, needed: int) -> None:
    decided = f" at {proposal.decided_height}" if proposal.decided_height else ""
    console.print(
        f"proposal {proposal.proposal_id}: {proposal.action.value} {proposal.spec.org_id}"
    )
    console.print(f"reason:   {proposal.reason}")
    console.print(f"by:       {show_address(proposal.proposer)} ({proposal.proposer_org})")
    console.print(f"status:   {proposal.status.value}{decided}")
    console.print(
        f"opened at {proposal.created_height}, lapses at {proposal.lapses_height}; "
        f"{len(proposal.approvals)} of {needed} approvals"
    )
    for approval in proposal.approvals:
        console.print(
            f"approved: {approval.org_id} by {show_address(approval.admin)} at {approval.height}"
        )


def read_spec(path: Path) -> OrganisationSpec:
    """A JOIN or UPDATE file: an organisation as genesis.json names one (org_id, name,
    kind, admins' public keys in hex, the account's public_key and encryption_key)."""
    from medchain.node import organisation_from_json

    try:
        org = organisation_from_json(json.loads(path.read_text()))
        kind = OrgKind(org.kind)
    except OSError as exc:
        raise MedchainError(f"cannot read {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        kinds = ", ".join(k.value for k in OrgKind)
        raise MedchainError(
            f"{path} does not describe an organisation ({exc}); give a JSON object with "
            f"org_id, name, kind ({kinds}), admins (hex public keys), public_key and "
            "encryption_key, as `medchain keys show` prints them"
        ) from None
    return OrganisationSpec(
        org.org_id, org.name, kind, org.admins, org.public_key, org.encryption_key
    )


def _proposal(
    join: Path | None, update: Path | None, leave: str | None
) -> tuple[ProposalAction, OrganisationSpec]:
    chosen = [c for c in (join, update, leave) if c is not None]
    if len(chosen) != 1:
        raise MedchainError("give exactly one of --join FILE, --update FILE or --leave ORG")
    if join is not None:
        return ProposalAction.JOIN, read_spec(join)
    if update is not None:
        return ProposalAction.UPDATE, read_spec(update)
    assert leave is not None
    return ProposalAction.LEAVE, leaving(leave)


@on_chain
def org_propose(
    where: Chain,
    key: AdminKeyOption,
    reason: ReasonOption,
    join: Annotated[
        Path | None,
        typer.Option(help="Admit the organisation this JSON file describes.", dir_okay=False),
    ] = None,
    update: Annotated[
        Path | None,
        typer.Option(help="Replace a member's description with this JSON file's.", dir_okay=False),
    ] = None,
    leave: Annotated[str | None, typer.Option(help="Remove this member organisation.")] = None,
) -> None:
    """Propose a change to the consortium; your organisation approves by proposing.
    Prints the proposal's id."""
    action, spec = _proposal(join, update, leave)
    with where.client(key) as client:
        proposal_id = proposal_id_of(client.propose_organisation(action, spec, reason))
        if proposal_id is None:
            raise MedchainError("the proposal was committed but its event names no id")
        proposal = client.chain.proposal(proposal_id)
    status = proposal.status.value if proposal is not None else "open"
    ok(f"proposal {proposal_id} to {action.value} {spec.org_id}: {status}")
    console.print(str(proposal_id))


@on_chain
def org_approve(
    where: Chain,
    proposal_id: Annotated[int, typer.Argument(min=1, max=MAX_INT, help="Proposal id.")],
    key: AdminKeyOption,
) -> None:
    """Approve a proposal for your organisation (one approval per organisation)."""
    with where.client(key) as client:
        client.approve_proposal(proposal_id)
        proposal = client.chain.proposal(proposal_id)
    status = proposal.status.value if proposal is not None else "open"
    ok(f"proposal {proposal_id} approved: {status}")


# -- credentials and attestations -----------------------------------------------------


@on_chain
def org_credential(
    where: Chain,
    address: AddressArg,
    key: AdminKeyOption,
    role: Annotated[str, typer.Option(help=", ".join(r.value for r in CredentialRole))],
    name: Annotated[
        str, typer.Option(help="Public name your organisation vouches for, e.g. 'Dr Ana Ruiz'.")
    ],
    days: Annotated[
        int, typer.Option(min=0, max=MAX_DAYS, help="Valid for this many days (0: no expiry).")
    ] = 365,
) -> None:
    """Credential an account for a role in your organisation (or renew its credential)."""
    if not name.strip():
        raise MedchainError("--name is empty; give the name your organisation vouches for")
    parsed = choice(CredentialRole, role, "role")
    expires_ms = expiry_after(days)
    with where.client(key) as client:
        client.issue_credential(address_arg(address), parsed, name, expires_ms)
    ok(f"{address} credentialed as {parsed.value} ({name})")


def _change_credential(
    where: Chain,
    key: Path,
    address: str,
    reason: str,
    change: Callable[[MedchainClient, bytes, str], Receipt],
    done: str,
) -> None:
    with where.client(key) as client:
        change(client, address_arg(address), reason)
    ok(f"credential of {address} {done}")


@on_chain
def org_suspend(
    where: Chain, address: AddressArg, key: AdminKeyOption, reason: ReasonOption
) -> None:
    """Suspend a credential your organisation issued (reinstate lifts it)."""
    _change_credential(where, key, address, reason, MedchainClient.suspend_credential, "suspended")


@on_chain
def org_reinstate(
    where: Chain, address: AddressArg, key: AdminKeyOption, reason: ReasonOption
) -> None:
    """Reinstate a credential your organisation suspended."""
    _change_credential(
        where, key, address, reason, MedchainClient.reinstate_credential, "reinstated"
    )


@on_chain
def org_revoke(
    where: Chain, address: AddressArg, key: AdminKeyOption, reason: ReasonOption
) -> None:
    """Revoke a credential your organisation issued, for good."""
    _change_credential(where, key, address, reason, MedchainClient.revoke_credential, "revoked")


@on_chain
def org_attest(where: Chain, patient: AddressArg, key: AdminKeyOption) -> None:
    """Attest that your organisation verified this patient's identity."""
    with where.client(key) as client:
        client.attest_patient(address_arg(patient))
    ok(f"{patient}'s identity attested")


@on_chain
def org_credentials(where: Chain, address: AddressArg) -> None:
    """An account's credentials, from every organisation."""
    with where.backend() as chain:
        found = chain.credentials_of(address_arg(address))
    for credential in found:
        console.print(f"{credential.org_id}: {_credential_line(credential)}", markup=False)
    if not found:
        console.print(f"{address} holds no credential")
