"""What an organisation's admin does through the SDK: propose and approve changes to
the consortium, credential accounts for roles and suspend, reinstate or revoke them,
and attest that a patient's identity was verified; and the reads that go with them.

An organisation's own account (the one that receives research copies and answers
emergency requests) is an ordinary account: its key file is an ordinary account key
file (`medchain.crypto.save_keys`), and `organisation_spec` reads the public keys a
proposal or a genesis names from it."""

from __future__ import annotations

from collections.abc import Iterable

from medchain.app import (
    ApproveArgs,
    AttestArgs,
    Credential,
    CredentialActionArgs,
    CredentialRole,
    IssueArgs,
    Organisation,
    OrganisationSpec,
    OrgKind,
    Proposal,
    ProposalAction,
    ProposeArgs,
    UnknownOrganisation,
)
from medchain.client._account import AccountCore
from medchain.crypto import AccountKeys
from medchain.types import GenesisOrganisation, Receipt


def organisation_spec(
    org_id: str,
    name: str,
    kind: OrgKind,
    admins: Iterable[AccountKeys | bytes],
    account: AccountKeys,
) -> OrganisationSpec:
    """What a JOIN or UPDATE proposal names: the admins' Ed25519 public keys (keys or
    the public keys themselves) and the organisation account's signing and encryption
    public keys, read from its key pair (`load_keys` of its key file)."""
    keys = tuple(a.public_key if isinstance(a, AccountKeys) else a for a in admins)
    return OrganisationSpec(
        org_id, name, kind, keys, account.public_key, account.encryption_public_key
    )


def genesis_organisation(
    org_id: str,
    name: str,
    kind: OrgKind,
    admins: Iterable[AccountKeys | bytes],
    account: AccountKeys,
) -> GenesisOrganisation:
    """A founding organisation as a genesis names it, from the same keys as
    `organisation_spec`."""
    spec = organisation_spec(org_id, name, kind, admins, account)
    return GenesisOrganisation(
        spec.org_id, spec.name, spec.kind.value, spec.admins, spec.public_key, spec.encryption_key
    )


def leaving(org_id: str) -> OrganisationSpec:
    """The spec of a LEAVE proposal: only the organisation's id is read."""
    return OrganisationSpec(org_id, "", OrgKind.HOSPITAL, (), b"", b"")


def proposal_id_of(receipt: Receipt) -> int | None:
    """The id of the proposal a committed `orgs.propose` opened (its org.proposed event)."""
    for event in receipt.events:
        if event.kind != "org.proposed":
            continue
        for attribute in event.attributes:
            if attribute.key == "proposal":
                return int(attribute.value)
    return None


class OrganisationActions(AccountCore):
    """A mixin of MedchainClient: an organisation admin's transactions and reads."""

    # -- the consortium -------------------------------------------------------------

    def propose_organisation(
        self, action: ProposalAction, spec: OrganisationSpec, reason: str
    ) -> Receipt:
        """Propose that an organisation join, be updated or leave (`leaving(org_id)` for
        a LEAVE); this admin's organisation approves by proposing. `proposal_id_of`
        the receipt is the new proposal's id."""
        return self.send("orgs.propose", ProposeArgs(action, spec, reason))

    def approve_proposal(self, proposal_id: int) -> Receipt:
        """Approve for this admin's organisation (one approval per organisation)."""
        return self.send("orgs.approve", ApproveArgs(proposal_id))

    def organisations(self) -> list[Organisation]:
        return self.chain.organisations()

    def organisation(self, org_id: str) -> Organisation:
        found = self.chain.organisation(org_id)
        if found is None:
            raise UnknownOrganisation(
                f"no organisation {org_id!r} on chain {self.chain.chain_id}; "
                "`medchain org list` lists them"
            )
        return found

    def my_organisation(self) -> Organisation | None:
        """The member organisation this account is an admin of, if any."""
        for org in self.chain.organisations():
            if org.member and self.address in org.admins:
                return org
        return None

    def proposals(self) -> list[Proposal]:
        return self.chain.proposals()

    # -- credentials ----------------------------------------------------------------

    def issue_credential(
        self, subject: bytes, role: CredentialRole, name: str, expires_ms: int = 0
    ) -> Receipt:
        """Credential `subject` for `role` under the display name this organisation
        vouches for, until block time `expires_ms` (0: never); renews an active or
        suspended credential of this organisation."""
        return self.send("credentials.issue", IssueArgs(subject, role, name, expires_ms))

    def suspend_credential(self, subject: bytes, reason: str) -> Receipt:
        return self.send("credentials.suspend", CredentialActionArgs(subject, reason))

    def reinstate_credential(self, subject: bytes, reason: str) -> Receipt:
        return self.send("credentials.reinstate", CredentialActionArgs(subject, reason))

    def revoke_credential(self, subject: bytes, reason: str) -> Receipt:
        """Final for this organisation: it cannot credential `subject` again."""
        return self.send("credentials.revoke", CredentialActionArgs(subject, reason))

    def credentials_of(self, subject: bytes | None = None) -> list[Credential]:
        """The credentials of `subject` (this account by default)."""
        return self.chain.credentials_of(self.address if subject is None else subject)

    def staff_of(self, org_id: str) -> list[Credential]:
        return self.chain.staff_of(org_id)

    # -- patients' identities -------------------------------------------------------

    def attest_patient(self, patient: bytes) -> Receipt:
        """Record that this admin's organisation verified the patient's identity."""
        return self.send("orgs.attest", AttestArgs(patient))

    def unattest_patient(self, patient: bytes) -> Receipt:
        return self.send("orgs.unattest", AttestArgs(patient))
