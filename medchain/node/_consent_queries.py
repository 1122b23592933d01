"""Read-only queries on consent: a patient's standing consents, the ones a record
written now would fall under, and the terms each reader of a record holds.

A mixin of `ChainQueries`: the class using it keeps `ledger` (the committed state)
and `store` (the blocks, whose latest time judges expiries)."""

from __future__ import annotations

from medchain import app
from medchain.app import Ledger, ReaderGrant, StandingConsent
from medchain.store import ChainStore


class ConsentQueries:
    ledger: Ledger
    store: ChainStore

    def consents_of(self, patient: bytes) -> list[StandingConsent]:
        """Every standing consent the patient gave, revoked and expired ones too, by id."""
        return app.consents_of(self.ledger.state, patient)

    def consent(self, consent_id: int) -> StandingConsent | None:
        return app.get_consent(self.ledger.state, consent_id)

    def covering_consents(
        self, patient: bytes, author: bytes, resource_type: str
    ) -> list[StandingConsent]:
        """The patient's consents in force, at the latest block's time, that a record of
        `resource_type` by `author` falls under, codes aside (the writer's client
        evaluates those on the plaintext), by id."""
        state = self.ledger.state
        now_ms = self.store.latest_block().header.time_ms
        orgs = app.author_organisations(state, author, now_ms)
        return [
            c
            for c in app.consents_in_force(state, patient, now_ms)
            if app.consent_matches(c, resource_type, author, orgs)
        ]

    def reader_grants(self, record_id: bytes) -> list[ReaderGrant]:
        """The terms of each current reader of the record (the defaults for one listed
        without stored terms), by reader; empty for an unknown record."""
        state = self.ledger.state
        record = app.get_record(state, record_id)
        if record is None:
            return []
        found = (app.reader_grant(state, record_id, record.readers, r) for r in record.readers)
        return [g for g in found if g is not None]
