"""Standing consents as FHIR R4 `Consent` resources, both ways: the one conversion the
CLI, and later the FHIR REST facade and the web app, use.

A consent exports as a patient-privacy Consent (LOINC 59284-0, policy rule OPTIN) with
one permit provision: `period.end` is the expiry, `actor` the reader (role IRCP) and
the authors and organisations it is limited to (role AUT), `purpose` the purposes of
use, `class` the resource types and `code` the codes. Accounts and organisations are
named by identifier (`ACCOUNT_SYSTEM`, `ORGANISATION_SYSTEM`), never by a server's
reference. Both directions validate the resource with `fhir.resources` (R4B), and an
import refuses what the chain cannot express rather than drop it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from medchain.app import (
    PURPOSE_DISPLAY,
    PURPOSE_SYSTEM,
    GrantConsentArgs,
    PurposeOfUse,
    StandingConsent,
)
from medchain.client._fhir import InvalidFhirResource, validate_resource
from medchain.crypto import format_address, parse_address
from medchain.types import MedchainError

ACCOUNT_SYSTEM = "urn:medchain:account"
"""The identifier system of medchain account addresses (bech32, mc1...)."""
ORGANISATION_SYSTEM = "urn:medchain:organisation"
"""The identifier system of medchain organisation ids."""
RESOURCE_TYPES_SYSTEM = "http://hl7.org/fhir/resource-types"
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
PARTICIPATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ACT_CODE_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
LOINC_SYSTEM = "http://loinc.org"
PATIENT_CONSENT_LOINC = "59284-0"
READER_ROLE = "IRCP"
"""Information recipient: who the consent lets read."""
AUTHOR_ROLE = "AUT"
"""Author: whose records (an account, or an organisation's staff) it covers."""
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FIX = "fix the Consent and import it again"


class InvalidConsent(InvalidFhirResource):
    """A FHIR Consent that medchain cannot grant as it says."""

    code = "invalid_consent"


# -- export ---------------------------------------------------------------------------


def _coding(system: str, code: str, display: str = "") -> dict[str, str]:
    return {"system": system, "code": code, **({"display": display} if display else {})}


def _identified(system: str, value: str, kind: str) -> dict[str, Any]:
    return {"type": kind, "identifier": {"system": system, "value": value}}


def _actor(role: str, reference: dict[str, Any]) -> dict[str, Any]:
    return {"role": {"coding": [_coding(PARTICIPATION_SYSTEM, role)]}, "reference": reference}


def _datetime_of(ms: int) -> str:
    return (_EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")


def consent_to_fhir(consent: StandingConsent) -> dict[str, Any]:
    """The consent as a validated FHIR R4 Consent resource (JSON-ready)."""
    actors = [
        _actor(READER_ROLE, _identified(ACCOUNT_SYSTEM, format_address(consent.reader), "Person")),
        *(
            _actor(AUTHOR_ROLE, _identified(ACCOUNT_SYSTEM, format_address(a), "Practitioner"))
            for a in consent.authors
        ),
        *(
            _actor(AUTHOR_ROLE, _identified(ORGANISATION_SYSTEM, org, "Organization"))
            for org in consent.organisations
        ),
    ]
    provision: dict[str, Any] = {
        "type": "permit",
        "actor": actors,
        "purpose": [_coding(PURPOSE_SYSTEM, p.value, PURPOSE_DISPLAY[p]) for p in consent.purposes],
    }
    if consent.expires_ms:
        provision["period"] = {"end": _datetime_of(consent.expires_ms)}
    if consent.resource_types:
        provision["class"] = [_coding(RESOURCE_TYPES_SYSTEM, t) for t in consent.resource_types]
    if consent.codes:
        provision["code"] = [{"coding": [_split_code(c)]} for c in consent.codes]
    resource = {
        "resourceType": "Consent",
        "id": f"medchain-consent-{consent.consent_id}",
        "status": "inactive" if consent.revoked_height else "active",
        "scope": {"coding": [_coding(SCOPE_SYSTEM, "patient-privacy")]},
        "category": [{"coding": [_coding(LOINC_SYSTEM, PATIENT_CONSENT_LOINC, "Patient consent")]}],
        "patient": _identified(ACCOUNT_SYSTEM, format_address(consent.patient), "Patient"),
        "policyRule": {"coding": [_coding(ACT_CODE_SYSTEM, "OPTIN")]},
        "provision": provision,
    }
    return validate_resource(resource)


def _split_code(code: str) -> dict[str, str]:
    system, _, value = code.partition("|")
    return _coding(system, value)


# -- import ---------------------------------------------------------------------------


def _refuse(problem: str) -> InvalidConsent:
    return InvalidConsent(f"this Consent cannot be granted: {problem}; {_FIX}")


def _codings(concept: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    return list((concept or {}).get("coding", []))


def _has_code(concept: Mapping[str, Any] | None, system: str, code: str) -> bool:
    return any(c.get("system") == system and c.get("code") == code for c in _codings(concept))


def _identifier(reference: Mapping[str, Any] | None, what: str) -> tuple[str, str]:
    identifier = (reference or {}).get("identifier") or {}
    system, value = identifier.get("system"), identifier.get("value")
    if system not in (ACCOUNT_SYSTEM, ORGANISATION_SYSTEM) or not value:
        raise _refuse(
            f"{what} must be named by an identifier of system {ACCOUNT_SYSTEM} (an account "
            f"address) or {ORGANISATION_SYSTEM} (an organisation id)"
        )
    return str(system), str(value)


def _address(value: str, what: str) -> bytes:
    try:
        return parse_address(value)
    except MedchainError:
        raise _refuse(f"{what} {value[:60]!r} is not a medchain address (mc1...)") from None


def _ms_of(text: str) -> int:
    """A period end as block time: a full dateTime, or a date meaning to its end."""
    try:
        if len(text) == 10:  # YYYY-MM-DD: through that day
            moment = datetime.fromisoformat(text).replace(tzinfo=UTC) + timedelta(days=1)
        else:
            moment = datetime.fromisoformat(text)
    except ValueError:
        raise _refuse(f"period.end {text!r} is not a date or dateTime") from None
    if moment.tzinfo is None:
        raise _refuse(f"period.end {text!r} has no time zone")
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def _actors(provision: Mapping[str, Any]) -> tuple[bytes, list[bytes], list[str]]:
    readers, authors, organisations = [], [], []
    for actor in provision.get("actor", []):
        system, value = _identifier(actor.get("reference"), "an actor")
        role = actor.get("role")
        if _has_code(role, PARTICIPATION_SYSTEM, READER_ROLE) and system == ACCOUNT_SYSTEM:
            readers.append(_address(value, "the reader"))
        elif _has_code(role, PARTICIPATION_SYSTEM, AUTHOR_ROLE):
            if system == ACCOUNT_SYSTEM:
                authors.append(_address(value, "an author"))
            else:
                organisations.append(value)
        else:
            raise _refuse(
                f"an actor's role must be {READER_ROLE} (the reader, an account) or "
                f"{AUTHOR_ROLE} (an author or organisation) of {PARTICIPATION_SYSTEM}"
            )
    if len(readers) != 1:
        raise _refuse(f"it names {len(readers)} readers (actor role {READER_ROLE}); name one")
    return readers[0], authors, organisations


def _purposes(provision: Mapping[str, Any]) -> list[PurposeOfUse]:
    found = []
    for coding in provision.get("purpose", []):
        try:
            if coding.get("system") != PURPOSE_SYSTEM:
                raise ValueError
            found.append(PurposeOfUse(coding.get("code")))
        except ValueError:
            raise _refuse(
                f"a purpose must be one of {', '.join(p.value for p in PurposeOfUse)} "
                f"of {PURPOSE_SYSTEM}"
            ) from None
    return found


def _types_and_codes(provision: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    types = []
    for coding in provision.get("class", []):
        if coding.get("system") != RESOURCE_TYPES_SYSTEM:
            raise _refuse(f"a provision class must be a resource type of {RESOURCE_TYPES_SYSTEM}")
        types.append(str(coding.get("code")))
    codes = [
        f"{coding.get('system')}|{coding.get('code')}"
        for concept in provision.get("code", [])
        for coding in _codings(concept)
    ]
    return types, codes


def _provision(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    if resource.get("status") != "active":
        raise _refuse(f"its status is {resource.get('status')!r}; only an active one is granted")
    if not _has_code(resource.get("scope"), SCOPE_SYSTEM, "patient-privacy"):
        raise _refuse(f"its scope is not patient-privacy ({SCOPE_SYSTEM})")
    provision: Mapping[str, Any] = resource.get("provision") or {}
    if provision.get("type") != "permit":
        raise _refuse("its provision must be of type permit")
    unsupported = sorted(
        k for k in ("provision", "data", "dataPeriod", "securityLabel", "action") if k in provision
    )
    if unsupported:
        raise _refuse(f"medchain cannot enforce provision.{', provision.'.join(unsupported)}")
    return provision


def consent_from_fhir(data: Mapping[str, Any] | str | bytes) -> GrantConsentArgs:
    """The standing consent a FHIR R4 Consent grants, as the arguments of
    `consents.grant`; InvalidFhirResource / InvalidConsent saying what to fix."""
    resource = validate_resource(data)
    if resource["resourceType"] != "Consent":
        raise _refuse(f"it is a {resource['resourceType']}, not a Consent")
    provision = _provision(resource)
    system, patient = _identifier(resource.get("patient"), "the patient")
    if system != ACCOUNT_SYSTEM:
        raise _refuse(f"the patient must be an account identifier of system {ACCOUNT_SYSTEM}")
    reader, authors, organisations = _actors(provision)
    types, codes = _types_and_codes(provision)
    end = (provision.get("period") or {}).get("end")
    return GrantConsentArgs(
        _address(patient, "the patient"),
        reader,
        tuple(sorted(set(types))),
        tuple(sorted(set(codes))),
        tuple(sorted(set(authors))),
        tuple(sorted(set(organisations))),
        tuple(sorted(set(_purposes(provision)))),
        _ms_of(str(end)) if end else 0,
    )


def grant_args_of(consent: StandingConsent) -> GrantConsentArgs:
    """What granting `consent` again would send: what an import of its export gives."""
    return GrantConsentArgs(
        consent.patient,
        consent.reader,
        consent.resource_types,
        consent.codes,
        consent.authors,
        consent.organisations,
        consent.purposes,
        consent.expires_ms,
    )
