"""Read-only queries on who may act: the consortium's organisations and proposals,
credentials and their history, patients' attestations.

A mixin of `ChainQueries`: the class using it keeps `ledger` (the committed state)
and `store` (the blocks, whose latest time judges expiries)."""

from __future__ import annotations

from medchain import app
from medchain.app import (
    Attestation,
    Credential,
    CredentialEvent,
    Ledger,
    Organisation,
    Proposal,
)
from medchain.store import ChainStore


class AccessQueries:
    ledger: Ledger
    store: ChainStore

    # -- organisations and proposals ------------------------------------------------------

    def organisations(self) -> list[Organisation]:
        """Every organisation, members and former ones, by id."""
        return app.organisations(self.ledger.state)

    def organisation(self, org_id: str) -> Organisation | None:
        return app.get_organisation(self.ledger.state, org_id)

    def proposals(self) -> list[Proposal]:
        """Every proposal, open and decided, by id."""
        return app.proposals(self.ledger.state)

    def proposal(self, proposal_id: int) -> Proposal | None:
        return app.get_proposal(self.ledger.state, proposal_id)

    # -- credentials ------------------------------------------------------------------

    def credentials_of(self, subject: bytes) -> list[Credential]:
        """The account's credentials, one per issuing organisation, by organisation id."""
        return app.credentials_of(self.ledger.state, subject)

    def credential_history(self, subject: bytes, org_id: str) -> list[CredentialEvent]:
        """What happened to the credential `org_id` issued `subject`, oldest first;
        empty when there is none."""
        state = self.ledger.state
        credential = app.get_credential(state, subject, org_id)
        return [] if credential is None else app.credential_history(state, credential)

    def staff_of(self, org_id: str) -> list[Credential]:
        """The credentials the organisation issued, whatever their status."""
        return app.staff_of(self.ledger.state, org_id)

    # -- patients: attestations --------------------------------------------

    def attestations_of(self, patient: bytes) -> list[Attestation]:
        return app.attestations_of(self.ledger.state, patient)

    def is_verified_patient(self, patient: bytes) -> bool:
        """Whether a current member organisation attests the patient's identity."""
        return app.is_verified_patient(self.ledger.state, patient)
