"""Attestations: a member organisation vouches that it verified a patient's identity
(in person, with documents). An anonymous scope can admit only attested patients to
its rings, so one person cannot fill a ring with accounts of their own. An
attestation counts only while its organisation is a member."""

from __future__ import annotations

from dataclasses import dataclass

from medchain.app._context import Call, Methods
from medchain.app._errors import InvalidArgument
from medchain.app._orgs import get_organisation, require_admin
from medchain.app._registry import Role, require_identity
from medchain.app._state import State, load, save
from medchain.crypto import format_address


@dataclass(frozen=True, slots=True)
class AttestArgs:
    patient: bytes


@dataclass(frozen=True, slots=True)
class Attestation:
    patient: bytes
    org_id: str
    attester: bytes
    """Address of the admin who signed it."""
    height: int
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class _Attestations:
    entries: tuple[Attestation, ...]
    """By org id."""


def _key(patient: bytes) -> bytes:
    return b"attest/" + patient


def attestations_of(state: State, patient: bytes) -> list[Attestation]:
    """Every attestation of `patient`, by org id (a former member's included)."""
    found = load(state, _key(patient), _Attestations)
    return list(found.entries) if found is not None else []


def is_verified_patient(state: State, patient: bytes) -> bool:
    """Whether a current member organisation attests `patient`."""
    for attestation in attestations_of(state, patient):
        org = get_organisation(state, attestation.org_id)
        if org is not None and org.member:
            return True
    return False


def _put(state: State, patient: bytes, entries: list[Attestation]) -> None:
    if entries:
        ordered = tuple(sorted(entries, key=lambda a: a.org_id))
        save(state, _key(patient), _Attestations(ordered))
    else:
        state.delete(_key(patient))


def attest(state: State, call: Call, args: AttestArgs) -> None:
    org = require_admin(state, call.sender)
    require_identity(state, args.patient, Role.PATIENT)
    entries = attestations_of(state, args.patient)
    if any(a.org_id == org.org_id for a in entries):
        raise InvalidArgument(f"{org.org_id!r} already attests {format_address(args.patient)}")
    entries.append(
        Attestation(args.patient, org.org_id, call.sender, call.block.height, call.tx_id)
    )
    _put(state, args.patient, entries)
    call.emit("org.attested", org=org.org_id, patient=args.patient, admin=call.sender)


def unattest(state: State, call: Call, args: AttestArgs) -> None:
    org = require_admin(state, call.sender)
    entries = attestations_of(state, args.patient)
    remaining = [a for a in entries if a.org_id != org.org_id]
    if len(remaining) == len(entries):
        raise InvalidArgument(f"{org.org_id!r} does not attest {format_address(args.patient)}")
    _put(state, args.patient, remaining)
    call.emit("org.unattested", org=org.org_id, patient=args.patient, admin=call.sender)


METHODS: Methods = {
    "orgs.attest": (AttestArgs, attest),
    "orgs.unattest": (AttestArgs, unattest),
}
