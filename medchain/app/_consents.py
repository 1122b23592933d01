"""Standing consents: a patient (or their `grant` proxy) lets a reader read all of the
patient's records of given FHIR resource types or codes, present and future,
optionally only from given authors or organisations ("my GP reads every Observation
and Condition").

The contract enforces what it can see: a consent without codes names the readers a new
record (or version) of a matching type and author must be wrapped for, and
`records.create`/`records.add_version` refuse a write that leaves one out. Codes live
inside the ciphertext, which the contract never sees: a consent with codes is applied
by the writer's client, which evaluates the codes on the plaintext and wraps for the
reader itself; the contract then only checks that the consent it names matches the
record's type and author. Past records are re-wrapped by the patient's client.

A patient's consents are a counted list (`consp/`), all of them, revoked included; the
ones in force, at most `MAX_CONSENTS_IN_FORCE`, are also kept in one sorted set
(`consa/`) so that every record write reads one entry to find its required readers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._credentials import credential_is_valid, credentials_of
from medchain.app._errors import InvalidArgument, NotAuthorised
from medchain.app._orgs import get_organisation
from medchain.app._proxies import ProxyScope, acting_for
from medchain.app._purposes import DEFAULT_GRANT_PURPOSES, PurposeOfUse
from medchain.app._registry import Role, require_identity
from medchain.app._state import State, load, save
from medchain.crypto import ADDRESS_SIZE, format_address

MAX_CONSENTS_IN_FORCE = 32
MAX_CONSENT_TYPES = 16
MAX_CONSENT_CODES = 32
MAX_CONSENT_AUTHORS = 16
MAX_CONSENT_ORGANISATIONS = 16
MAX_CODE_CHARS = 256
_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


@dataclass(frozen=True, slots=True)
class StandingConsent:
    consent_id: int
    """Chain-wide counter from 1."""
    patient: bytes
    reader: bytes
    resource_types: tuple[str, ...]
    """Sorted; () = every type."""
    codes: tuple[str, ...]
    """"system|code", sorted; () = every code."""
    authors: tuple[bytes, ...]
    """Sorted addresses; () = any author (unless organisations are named)."""
    organisations: tuple[str, ...]
    """Sorted org ids of the authors' credentialing organisations; () = any."""
    purposes: tuple[PurposeOfUse, ...]
    """Sorted, at least one."""
    expires_ms: int
    """Block time the consent ends at (0 = never)."""
    granted_height: int
    granted_by: bytes
    """The patient, or their `grant` proxy."""
    revoked_height: int = 0

    def in_force(self, now_ms: int) -> bool:
        return not self.revoked_height and (self.expires_ms == 0 or now_ms < self.expires_ms)


@dataclass(frozen=True, slots=True)
class GrantConsentArgs:
    patient: bytes
    reader: bytes
    resource_types: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    authors: tuple[bytes, ...] = ()
    organisations: tuple[str, ...] = ()
    purposes: tuple[PurposeOfUse, ...] = ()
    """Empty means `DEFAULT_GRANT_PURPOSES`."""
    expires_ms: int = 0


@dataclass(frozen=True, slots=True)
class RevokeConsentArgs:
    consent_id: int


@dataclass(frozen=True, slots=True)
class _InForce:
    consent_ids: tuple[int, ...]
    """Sorted ids of the patient's unrevoked consents (expired ones leave on the next
    grant or revoke)."""


_COUNTER_KEY = b"cons/n"


def _consent_key(consent_id: int) -> bytes:
    return b"cons/" + consent_id.to_bytes(8, "big")


def _count_key(patient: bytes) -> bytes:
    return b"consp/" + patient + b"/n"


def _entry_key(patient: bytes, index: int) -> bytes:
    return b"consp/" + patient + b"/" + index.to_bytes(8, "big")


def _in_force_key(patient: bytes) -> bytes:
    return b"consa/" + patient


def _count(state: State, key: bytes) -> int:
    raw = state.get(key)
    return int.from_bytes(raw, "big") if raw else 0


# -- queries ------------------------------------------------------------------------


def get_consent(state: State, consent_id: int) -> StandingConsent | None:
    if consent_id < 1:
        return None
    return load(state, _consent_key(consent_id), StandingConsent)


def consents_of(state: State, patient: bytes) -> list[StandingConsent]:
    """Every consent the patient gave, revoked and expired included, by id."""
    found = []
    for index in range(_count(state, _count_key(patient))):
        raw = state.get(_entry_key(patient, index))
        assert raw is not None, "consent list has a hole"
        consent = get_consent(state, int.from_bytes(raw, "big"))
        assert consent is not None, "consent list names a missing consent"
        found.append(consent)
    return found


def consents_in_force(state: State, patient: bytes, now_ms: int) -> list[StandingConsent]:
    """The patient's consents neither revoked nor expired at block time `now_ms`, by id."""
    ids = (load(state, _in_force_key(patient), _InForce) or _InForce(())).consent_ids
    found = [get_consent(state, consent_id) for consent_id in ids]
    return [c for c in found if c is not None and c.in_force(now_ms)]


def author_organisations(state: State, author: bytes, now_ms: int) -> tuple[str, ...]:
    """The organisations whose credentials of `author` are valid at `now_ms`, sorted."""
    valid = (c for c in credentials_of(state, author) if credential_is_valid(state, c, now_ms))
    return tuple(sorted({c.org_id for c in valid}))


def consent_matches(
    consent: StandingConsent, resource_type: str, author: bytes, author_orgs: Iterable[str]
) -> bool:
    """Whether a record of `resource_type` by `author` (credentialed by `author_orgs`)
    falls under the consent, codes aside: its type is named (or none are), and its
    author is named or credentialed by a named organisation (or neither is named)."""
    if consent.resource_types and resource_type not in consent.resource_types:
        return False
    if not consent.authors and not consent.organisations:
        return True
    return author in consent.authors or bool(set(author_orgs) & set(consent.organisations))


def matching_consents(
    state: State, patient: bytes, author: bytes, resource_type: str, now_ms: int
) -> list[StandingConsent]:
    """The consents in force that a record of `resource_type` by `author` falls under,
    codes aside, by id."""
    orgs = author_organisations(state, author, now_ms)
    return [
        c
        for c in consents_in_force(state, patient, now_ms)
        if consent_matches(c, resource_type, author, orgs)
    ]


def consent_readers(
    state: State, patient: bytes, author: bytes, resource_type: str, now_ms: int
) -> tuple[tuple[bytes, StandingConsent], ...]:
    """The readers the contract requires for a new record (or version) of
    `resource_type` by `author`, each with the consent that requires it (the lowest id
    when several do), by reader. Consents with codes are left to the writer's client."""
    required: dict[bytes, StandingConsent] = {}
    for consent in matching_consents(state, patient, author, resource_type, now_ms):
        if not consent.codes:
            required.setdefault(consent.reader, consent)
    return tuple(sorted(required.items()))


# -- methods ------------------------------------------------------------------------


def _sorted_unique(items: tuple[object, ...], what: str, limit: int) -> None:
    if len(items) > limit:
        raise InvalidArgument(f"a consent names at most {limit} {what}")
    if len(set(items)) != len(items):
        raise InvalidArgument(f"each of a consent's {what} is named once")


def _check_code(code: str) -> None:
    system, bar, value = code.partition("|")
    if (
        not bar
        or not system
        or not value
        or "|" in value
        or len(code) > MAX_CODE_CHARS
        or any(ch.isspace() for ch in system)
        or value != value.strip()
    ):
        raise InvalidArgument(
            f"{code[:80]!r} is not a code as `system|code` (for example `http://loinc.org|4548-4`)"
        )


def _check_filters(state: State, args: GrantConsentArgs) -> None:
    _sorted_unique(args.resource_types, "resource types", MAX_CONSENT_TYPES)
    for resource_type in args.resource_types:
        if not _RESOURCE_TYPE.match(resource_type):
            raise InvalidArgument(f"{resource_type!r} is not a FHIR resource type name")
    _sorted_unique(args.codes, "codes", MAX_CONSENT_CODES)
    for code in args.codes:
        _check_code(code)
    _sorted_unique(args.authors, "authors", MAX_CONSENT_AUTHORS)
    for author in args.authors:
        if len(author) != ADDRESS_SIZE:
            raise InvalidArgument(f"an author is a {ADDRESS_SIZE}-byte account address")
    _sorted_unique(args.organisations, "organisations", MAX_CONSENT_ORGANISATIONS)
    for org_id in args.organisations:
        if get_organisation(state, org_id) is None:
            raise InvalidArgument(
                f"no organisation {org_id!r} on this chain; `medchain org list` shows them"
            )


def normalise_purposes(purposes: tuple[PurposeOfUse, ...]) -> tuple[PurposeOfUse, ...]:
    """Sorted purposes; none named means the default (treatment)."""
    if len(set(purposes)) != len(purposes):
        raise InvalidArgument("each purpose of use is named once")
    return tuple(sorted(purposes)) if purposes else DEFAULT_GRANT_PURPOSES


def check_expiry(expires_ms: int, now_ms: int) -> None:
    if expires_ms < 0 or (expires_ms and expires_ms <= now_ms):
        raise InvalidArgument(
            f"the expiry {expires_ms} ms is not after the block time {now_ms} ms; "
            "give a later one, or 0 for none"
        )


def check_reader(state: State, reader: bytes, patient: bytes) -> None:
    """A reader of the patient's records: a registered account with an encryption key,
    neither a validator nor the patient."""
    if reader == patient:
        raise InvalidArgument("the patient always reads their own records; name another reader")
    identity = require_identity(state, reader)
    if identity.role is Role.VALIDATOR or not identity.encryption_key:
        raise InvalidArgument(
            f"{format_address(reader)} is a {identity.role.value} without an encryption key "
            "and cannot read records"
        )


def grant(state: State, call: Call, args: GrantConsentArgs) -> None:
    """Patient or their `grant` proxy: a standing consent for `reader`."""
    require_identity(state, args.patient, Role.PATIENT)
    acting_for(state, call, args.patient, ProxyScope.GRANT, "grant a standing consent")
    check_reader(state, args.reader, args.patient)
    _check_filters(state, args)
    purposes = normalise_purposes(args.purposes)
    check_expiry(args.expires_ms, call.block.time_ms)
    current = consents_in_force(state, args.patient, call.block.time_ms)
    if len(current) >= MAX_CONSENTS_IN_FORCE:
        raise InvalidArgument(
            f"a patient has at most {MAX_CONSENTS_IN_FORCE} standing consents in force; "
            "revoke one first (`medchain consent revoke`)"
        )
    consent_id = _count(state, _COUNTER_KEY) + 1
    state.set(_COUNTER_KEY, consent_id.to_bytes(8, "big"))
    consent = StandingConsent(
        consent_id,
        args.patient,
        args.reader,
        args.resource_types,
        args.codes,
        args.authors,
        args.organisations,
        purposes,
        args.expires_ms,
        call.block.height,
        call.sender,
    )
    save(state, _consent_key(consent_id), consent)
    index = _count(state, _count_key(args.patient))
    state.set(_entry_key(args.patient, index), consent_id.to_bytes(8, "big"))
    state.set(_count_key(args.patient), (index + 1).to_bytes(8, "big"))
    _store_in_force(state, args.patient, [*(c.consent_id for c in current), consent_id])
    call.emit(
        "consent.granted",
        consent=consent_id,
        patient=args.patient,
        reader=args.reader,
        actor=call.sender,
    )


def revoke(state: State, call: Call, args: RevokeConsentArgs) -> None:
    """Patient or their `grant` proxy: the consent requires no reader from this block on.
    Records already wrapped for the reader stay readable until revoked one by one."""
    consent = get_consent(state, args.consent_id)
    if consent is None:
        raise InvalidArgument(
            f"no standing consent {args.consent_id}; `medchain consent list` shows them"
        )
    acting_for(state, call, consent.patient, ProxyScope.GRANT, "revoke a standing consent")
    if consent.revoked_height:
        raise NotAuthorised(
            f"standing consent {consent.consent_id} was revoked at height "
            f"{consent.revoked_height} already"
        )
    save(
        state, _consent_key(consent.consent_id), replace(consent, revoked_height=call.block.height)
    )
    remaining = consents_in_force(state, consent.patient, call.block.time_ms)
    _store_in_force(
        state, consent.patient, [c.consent_id for c in remaining if c.consent_id != args.consent_id]
    )
    call.emit(
        "consent.revoked",
        consent=consent.consent_id,
        patient=consent.patient,
        reader=consent.reader,
        actor=call.sender,
    )


def _store_in_force(state: State, patient: bytes, consent_ids: list[int]) -> None:
    if consent_ids:
        save(state, _in_force_key(patient), _InForce(tuple(sorted(consent_ids))))
    else:
        state.delete(_in_force_key(patient))


METHODS: Methods = {
    "consents.grant": (GrantConsentArgs, grant),
    "consents.revoke": (RevokeConsentArgs, revoke),
}
