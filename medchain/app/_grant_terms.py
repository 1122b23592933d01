"""The terms each reader of a record is granted on, as the records contract sets them
when it adds readers: the writer's terms, a standing consent's, or the defaults; and
who a new record or version must be wrapped for (the patient's `read` proxies and the
readers their standing consents require).

Kept apart from `_records` so that the record methods stay about records: they call
these helpers with what they know (patient, author, type, readers, block time).
"""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._consents import (
    StandingConsent,
    check_expiry,
    consent_readers,
    get_consent,
    matching_consents,
    normalise_purposes,
)
from medchain.app._context import Call
from medchain.app._errors import InvalidArgument, KeyWrapMismatch, ReaderRequired
from medchain.app._grants import ReaderGrant, get_reader_grant, put_reader_grant
from medchain.app._keywrap import KeyWrap
from medchain.app._proxies import required_readers
from medchain.app._purposes import DEFAULT_GRANT_PURPOSES, PurposeOfUse
from medchain.app._state import State
from medchain.crypto import format_address


@dataclass(frozen=True, slots=True)
class ReaderTerms:
    """What a new record's writer grants one of its readers."""

    reader: bytes
    purposes: tuple[PurposeOfUse, ...]
    """Empty means `DEFAULT_GRANT_PURPOSES`."""
    expires_ms: int
    """Block time the grant ends at (0 = never)."""
    consent_id: int = 0
    """The standing consent (with codes, applied by the writer's client) the reader is
    wrapped for; the grant then takes that consent's terms, not the two fields above."""


@dataclass(frozen=True, slots=True)
class WriteContext:
    """Who writes what for whom, when: what decides a new version's required readers."""

    patient: bytes
    author: bytes
    resource_type: str
    now_ms: int


def required_for(state: State, write: WriteContext) -> dict[bytes, StandingConsent | None]:
    """Every reader a new record or version must be wrapped for, besides the patient:
    the patient's `read` proxies (None) and the readers their consents without codes
    require (the consent)."""
    required: dict[bytes, StandingConsent | None] = dict.fromkeys(
        required_readers(state, write.patient, write.now_ms)
    )
    for reader, consent in consent_readers(
        state, write.patient, write.author, write.resource_type, write.now_ms
    ):
        required.setdefault(reader, consent)
    return required


def require_wrapped_for(
    wraps: tuple[KeyWrap, ...], required: dict[bytes, StandingConsent | None]
) -> None:
    """Every required reader must have a wrap; ReaderRequired names who and why."""
    wrapped = {w.reader for w in wraps}
    missing = sorted(r for r in required if r not in wrapped)
    if not missing:
        return
    reasons = []
    for reader in missing:
        consent = required[reader]
        why = "their `read` proxy" if consent is None else f"standing consent {consent.consent_id}"
        reasons.append(f"{format_address(reader)} ({why})")
    raise ReaderRequired(
        f"the patient requires every such record to be readable by {', '.join(reasons)}; "
        "the client must wrap the content key for it too — read the patient's required "
        "readers and consents again and encrypt again"
    )


def consent_grant(record_id: bytes, consent: StandingConsent, height: int) -> ReaderGrant:
    return ReaderGrant(
        record_id, consent.reader, consent.purposes, consent.expires_ms, height, consent.consent_id
    )


def named_consent(state: State, write: WriteContext, terms: ReaderTerms) -> StandingConsent:
    """The consent a writer names for a reader: it must be the patient's, for that
    reader, in force and cover the record's type and author."""
    consent = get_consent(state, terms.consent_id)
    covering = matching_consents(
        state, write.patient, write.author, write.resource_type, write.now_ms
    )
    if consent is None or consent.reader != terms.reader or consent not in covering:
        raise InvalidArgument(
            f"standing consent {terms.consent_id} does not cover a {write.resource_type} "
            f"by {format_address(write.author)} for {format_address(terms.reader)}; "
            "read the patient's consents again"
        )
    return consent


def _check_terms(terms: tuple[ReaderTerms, ...], readers: tuple[bytes, ...]) -> None:
    named = [t.reader for t in terms]
    if named != sorted(set(named)):
        raise InvalidArgument("reader terms must be sorted by reader address with no duplicates")
    strangers = set(named) - set(readers)
    if strangers:
        who = ", ".join(format_address(r) for r in sorted(strangers))
        raise InvalidArgument(f"terms name {who}, who is not wrapped for as a reader")


def new_record_grants(
    state: State,
    call: Call,
    record_id: bytes,
    write: WriteContext,
    readers: tuple[bytes, ...],
    terms: tuple[ReaderTerms, ...],
) -> None:
    """Store the grant of each reader of a new record: a requiring consent's terms, the
    writer's terms, or the defaults."""
    _check_terms(terms, readers)
    by_reader = {t.reader: t for t in terms}
    required = required_for(state, write)
    height = call.block.height
    for reader in readers:
        consent = required.get(reader)
        given = by_reader.get(reader)
        if consent is None and given is not None and given.consent_id:
            consent = named_consent(state, write, given)
        if consent is not None:
            put_reader_grant(state, consent_grant(record_id, consent, height))
        elif given is not None:
            check_expiry(given.expires_ms, write.now_ms)
            purposes = normalise_purposes(given.purposes)
            put_reader_grant(
                state, ReaderGrant(record_id, reader, purposes, given.expires_ms, height)
            )
        else:
            put_reader_grant(
                state, ReaderGrant(record_id, reader, DEFAULT_GRANT_PURPOSES, 0, height)
            )


def expired_readers(
    state: State, record_id: bytes, readers: tuple[bytes, ...], keep: set[bytes], now_ms: int
) -> tuple[bytes, ...]:
    """The readers whose grant on the record has expired at `now_ms`, except those in
    `keep` (required again by a proxy or consent), sorted."""
    expired = []
    for reader in readers:
        grant = get_reader_grant(state, record_id, reader)
        if reader in keep or grant is None:
            continue
        if grant.expires_ms and now_ms >= grant.expires_ms:
            expired.append(reader)
    return tuple(expired)


def refuse_expired_wraps(wraps: tuple[KeyWrap, ...], expired: tuple[bytes, ...]) -> None:
    wrapped_expired = [w.reader for w in wraps if w.reader in expired]
    if wrapped_expired:
        who = ", ".join(format_address(r) for r in wrapped_expired)
        raise KeyWrapMismatch(
            f"the grant of {who} on this record has expired: a new version must not be "
            "wrapped for it; refresh the record's reader list and encrypt again"
        )


def version_grants(
    state: State,
    call: Call,
    record_id: bytes,
    write: WriteContext,
    readers: tuple[bytes, ...],
    wraps: tuple[KeyWrap, ...],
) -> tuple[bytes, ...]:
    """For a new version: refresh the grants of required readers (missing or expired
    ones take the requiring terms) and admit the wrapped readers who join — required
    ones, and readers of a consent with codes that covers the version (the writer's
    client evaluated the codes). Returns the joining readers, sorted."""
    required = required_for(state, write)
    height = call.block.height
    joining = []
    for reader in sorted({w.reader for w in wraps if w.reader != write.patient}):
        if reader in required:
            consent = required[reader]
            current = get_reader_grant(state, record_id, reader)
            stale = current is None or (current.expires_ms and write.now_ms >= current.expires_ms)
            if stale or reader not in readers:
                grant = (
                    ReaderGrant(record_id, reader, DEFAULT_GRANT_PURPOSES, 0, height)
                    if consent is None
                    else consent_grant(record_id, consent, height)
                )
                put_reader_grant(state, grant)
        elif reader not in readers:
            covering = _covering_consent(state, write, reader)
            if covering is None:
                continue  # check_wraps names it as not authorised
            put_reader_grant(state, consent_grant(record_id, covering, height))
        if reader not in readers:
            joining.append(reader)
    return tuple(joining)


def _covering_consent(state: State, write: WriteContext, reader: bytes) -> StandingConsent | None:
    covering = matching_consents(
        state, write.patient, write.author, write.resource_type, write.now_ms
    )
    return next((c for c in covering if c.reader == reader), None)
