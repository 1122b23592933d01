"""Consent from the SDK: grant terms (purposes, expiry), standing consents, and what a
writer wraps a record for because of them.

The chain requires the readers of consents without codes on every matching record;
a consent with codes is the writer's client's to apply, because the codes are inside
the ciphertext: `consented_readers` evaluates them on the plaintext before it is
encrypted. When a patient grants a standing consent, the records they hold already are
theirs to re-wrap: `grant_consent` warrants the reader on each record the consent
covers (decrypting each to test codes). An expired grant is a revoke from the next
version on: a writer leaves the reader out (`expired_readers`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from medchain.app import (
    GrantConsentArgs,
    PurposeOfUse,
    ReaderGrant,
    ReaderTerms,
    Record,
    RevokeConsentArgs,
    SetTermsArgs,
    StandingConsent,
)
from medchain.client._account import AccountCore
from medchain.client._batch import submit_all
from medchain.types import MedchainError, Receipt

if TYPE_CHECKING:
    from medchain.app import WarrantArgs


class UnknownConsent(MedchainError):
    code = "unknown_consent"


@dataclass(frozen=True, slots=True)
class ConsentGrant:
    receipt: Receipt
    """The `consents.grant` transaction's."""
    consent: StandingConsent
    rewrapped: tuple[bytes, ...]
    """The patient's past records the reader was warranted on."""
    skipped: tuple[bytes, ...]
    """Past records the consent covers that this account could not open to re-wrap
    (a `grant` proxy that does not read them): the patient's own client can."""


def resource_codes(resource: Mapping[str, Any]) -> frozenset[str]:
    """Every coding in the resource, as `system|code`: what a consent's codes match."""
    return frozenset(_codings(resource))


def _codings(node: Any) -> Iterator[str]:
    if isinstance(node, Mapping):
        system, code = node.get("system"), node.get("code")
        if isinstance(system, str) and isinstance(code, str):
            yield f"{system}|{code}"
        for value in node.values():
            yield from _codings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _codings(item)


def consent_applies(consent: StandingConsent, codes: frozenset[str]) -> bool:
    """A covering consent applies to a record with `codes`: it names none, or one of them."""
    return not consent.codes or bool(codes & set(consent.codes))


def _consent_id_of(receipt: Receipt) -> int:
    for event in receipt.events:
        if event.kind == "consent.granted":
            return int(next(a.value for a in event.attributes if a.key == "consent"))
    raise MedchainError("the consents.grant receipt names no consent")


def _wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class ConsentActions(AccountCore):
    """A mixin of MedchainClient: grant terms and standing consents."""

    clock: Callable[[], int] | None = None
    """With the latest block's time, what judges whether a grant has expired when this
    account writes: the wall clock unless set (a test sets its chain's clock)."""

    if TYPE_CHECKING:

        def record(self, record_id: bytes) -> Record: ...

        def read_record(self, record_id: bytes, version: int | None = None) -> dict[str, Any]: ...

        def warrant_args(
            self,
            record_id: bytes,
            reader: bytes,
            purposes: tuple[PurposeOfUse, ...] = (),
            expires_ms: int = 0,
            consent_id: int = 0,
        ) -> WarrantArgs: ...

    # -- grant terms ----------------------------------------------------------------

    def set_terms(
        self,
        record_id: bytes,
        reader: bytes,
        purposes: Iterable[PurposeOfUse] = (),
        expires_ms: int = 0,
    ) -> Receipt:
        """Owner, or their `grant` proxy: change what a current reader may read the record
        for (none named: treatment) and until when (block time, 0 = never)."""
        args = SetTermsArgs(record_id, reader, tuple(sorted(set(purposes))), expires_ms)
        return self.send("records.set_terms", args)

    def reader_grants(self, record_id: bytes) -> list[ReaderGrant]:
        """The terms each current reader of the record holds, by reader."""
        self.record(record_id)
        return self.chain.reader_grants(record_id)

    def expired_readers(self, record: Record) -> frozenset[bytes]:
        """The record's readers whose grant has expired by now: a new version leaves them
        out (the chain refuses a wrap for them)."""
        now_ms = max(self.chain.latest_block().header.time_ms, (self.clock or _wall_clock_ms)())
        grants = self.chain.reader_grants(record.record_id)
        return frozenset(g.reader for g in grants if g.expires_ms and now_ms >= g.expires_ms)

    # -- standing consents ----------------------------------------------------------

    def consents(self, patient: bytes | None = None) -> list[StandingConsent]:
        """The standing consents of `patient` (by default this account), revoked too."""
        return self.chain.consents_of(self.address if patient is None else patient)

    def consent(self, consent_id: int) -> StandingConsent:
        found = self.chain.consent(consent_id)
        if found is None:
            raise UnknownConsent(
                f"no standing consent {consent_id} on this chain; `medchain consent list` "
                "shows a patient's"
            )
        return found

    def grant_consent(
        self,
        reader: bytes,
        resource_types: Iterable[str] = (),
        codes: Iterable[str] = (),
        authors: Iterable[bytes] = (),
        organisations: Iterable[str] = (),
        purposes: Iterable[PurposeOfUse] = (),
        expires_ms: int = 0,
        patient: bytes | None = None,
    ) -> ConsentGrant:
        """Patient (or their `grant` proxy for `patient`): let `reader` read the
        patient's records of the given types and codes, by the given authors or
        organisations (none named: all), present and future, for `purposes` until
        `expires_ms`. The past records it covers are warranted for the reader here."""
        owner = self.address if patient is None else patient
        args = GrantConsentArgs(
            owner,
            reader,
            tuple(sorted(set(resource_types))),
            tuple(sorted(set(codes))),
            tuple(sorted(set(authors))),
            tuple(sorted(set(organisations))),
            tuple(sorted(set(purposes))),
            expires_ms,
        )
        return self.grant_consent_as(args)

    def grant_consent_as(self, args: GrantConsentArgs) -> ConsentGrant:
        """`grant_consent` with its arguments as the chain takes them (a consent
        imported from FHIR, `consent_from_fhir`)."""
        receipt = self.send("consents.grant", args)
        consent = self.consent(_consent_id_of(receipt))
        rewrapped, skipped = self._rewrap_past(consent)
        return ConsentGrant(receipt, consent, rewrapped, skipped)

    def revoke_consent(self, consent_id: int) -> Receipt:
        """Patient (or their `grant` proxy): the consent requires its reader on no later
        record; the records it was wrapped for stay readable until revoked one by one."""
        return self.send("consents.revoke", RevokeConsentArgs(consent_id))

    def _rewrap_past(self, consent: StandingConsent) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """Warrant the consent's reader on each past record it covers (codes tested on
        the latest version's plaintext); returns those re-wrapped and those this account
        cannot open."""
        calls: list[WarrantArgs] = []
        done, skipped = [], []
        for record_id in self.chain.patient_records(consent.patient):
            record = self.record(record_id)
            if record.erased_height:  # opens to nobody, and the contract refuses it
                continue
            if consent.reader in record.readers or not self._covers(consent, record):
                continue
            if self.address not in (record.owner, *record.readers):
                skipped.append(record_id)
                continue
            if consent.codes:
                codes = resource_codes(self.read_record(record_id))
                if not consent_applies(consent, codes):
                    continue
            calls.append(
                self.warrant_args(record_id, consent.reader, consent_id=consent.consent_id)
            )
            done.append(record_id)
        submit_all(self, "records.warrant", calls)
        return tuple(done), tuple(skipped)

    def _covers(self, consent: StandingConsent, record: Record) -> bool:
        covering = self.chain.covering_consents(
            consent.patient, record.author, record.resource_type
        )
        return any(c.consent_id == consent.consent_id for c in covering)

    # -- what a writer wraps for ----------------------------------------------------

    def consented_readers(
        self, patient: bytes, resource: Mapping[str, Any]
    ) -> dict[bytes, StandingConsent]:
        """The readers the patient's consents give a record of `resource` written by this
        account, each with its consent (the lowest id when several): those without codes
        (the chain requires them) and those whose codes the plaintext carries."""
        covering = self.chain.covering_consents(
            patient, self.address, str(resource["resourceType"])
        )
        codes = resource_codes(resource)
        found: dict[bytes, StandingConsent] = {}
        for consent in covering:
            if consent_applies(consent, codes) and consent.reader != patient:
                found.setdefault(consent.reader, consent)
        return found

    @staticmethod
    def consent_terms(consented: Mapping[bytes, StandingConsent]) -> tuple[ReaderTerms, ...]:
        """The terms a new record names for its consented readers: their consents'."""
        return tuple(
            ReaderTerms(reader, (), 0, consent.consent_id)
            for reader, consent in sorted(consented.items())
        )
