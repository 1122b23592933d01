"""A patient's emergency set: the policy that names it (`emergency.set_policy`), and
the content keys of its records wrapped to the patient's threshold emergency key.

Why a module of its own: `records.create` and `records.add_version` must check and keep
a record's emergency wrap in the same call that writes the record, and the break-glass
contract (`_emergency`) reads what they kept; both import this module, which imports
neither of them.

The chain never sees a content key or a share: it keeps, per record, the latest
version's wrap (ephemeral R and the sealed key) and checks only its shape and that a
record of a type in the set carries one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from medchain.app._context import Call
from medchain.app._errors import EmergencyError
from medchain.app._orgs import member_organisations
from medchain.app._proxies import ProxyScope, acting_for
from medchain.app._registry import Role, require_identity
from medchain.app._state import State, load, save
from medchain.crypto import (
    SEALED_EMERGENCY_KEY_SIZE,
    WRAPPED_KEY_SIZE,
    commitments_consistent,
    is_canonical_point,
)

MAX_EMERGENCY_TYPES = 16
DEFAULT_EMERGENCY_TYPES = (
    "AllergyIntolerance",
    "Condition",
    "Immunization",
    "MedicationRequest",
    "MedicationStatement",
    "Observation",
)
"""Allergies, conditions, immunizations, medications and (blood group) observations."""

OPTIONAL_EMERGENCY_TYPES = frozenset({"Observation"})
"""Types whose records join the set only when they carry a wrap: Observations are mostly
readings (devices write them without the patient's key); the patient's client wraps the
ones that matter in an emergency, such as the blood group."""

_RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")


@dataclass(frozen=True, slots=True)
class SealedShare:
    """One organisation's share of the emergency key: its public commitment s_i·G and the
    share itself sealed (HPKE) to the organisation account's encryption key. The share's
    index is its position in the policy's org-id order, from 1."""

    org_id: str
    commitment: bytes
    sealed: bytes


@dataclass(frozen=True, slots=True)
class EmergencyPolicyArgs:
    enabled: bool
    resource_types: tuple[str, ...]
    """Sorted FHIR resource type names; empty when disabled."""
    public_key: bytes
    """The emergency key x·G (ristretto255); empty when disabled."""
    threshold: int
    shares: tuple[SealedShare, ...]
    """One per member organisation, sorted by org id; empty when disabled."""
    patient: bytes = b""
    """Whose policy: empty for the sender's own, else the patient a `grant` proxy sets
    it for."""


@dataclass(frozen=True, slots=True)
class EmergencyPolicy:
    patient: bytes
    enabled: bool
    resource_types: tuple[str, ...]
    public_key: bytes
    threshold: int
    shares: tuple[SealedShare, ...]
    set_height: int
    set_by: bytes
    """The patient, or the proxy who set it for them."""


@dataclass(frozen=True, slots=True)
class EmergencyWrapArgs:
    """A version's content key sealed to the patient's emergency key
    (`medchain.crypto.emergency_wrap`, context `emergency_context(record_id, version)`)."""

    ephemeral: bytes
    sealed_key: bytes


@dataclass(frozen=True, slots=True)
class EmergencyEntry:
    """The emergency wrap of a record's latest wrapped version."""

    record_id: bytes
    resource_type: str
    version: int
    ephemeral: bytes
    sealed_key: bytes
    public_key: bytes
    """The emergency key it is sealed to: a later policy with a new key leaves it out."""


@dataclass(frozen=True, slots=True)
class _EntryIndex:
    record_ids: tuple[bytes, ...]
    """In order of the first wrap: the newest last."""


def emergency_context(record_id: bytes, version: int) -> bytes:
    """What an emergency wrap is bound to, so it opens only for its own record version."""
    return b"medchain/emergency-record/v1\x00" + record_id + version.to_bytes(4, "big")


def _policy_key(patient: bytes) -> bytes:
    return b"emp/" + patient


def _entry_key(record_id: bytes) -> bytes:
    return b"emw/" + record_id


def _index_key(patient: bytes) -> bytes:
    return b"emi/" + patient


def get_policy(state: State, patient: bytes) -> EmergencyPolicy | None:
    return load(state, _policy_key(patient), EmergencyPolicy)


def put_policy(state: State, policy: EmergencyPolicy) -> None:
    save(state, _policy_key(policy.patient), policy)


def emergency_entries(state: State, patient: bytes) -> list[EmergencyEntry]:
    """The patient's wrapped records, oldest first, each with its latest wrap."""
    index = load(state, _index_key(patient), _EntryIndex)
    found = [] if index is None else [get_entry(state, r) for r in index.record_ids]
    return [e for e in found if e is not None]


def get_entry(state: State, record_id: bytes) -> EmergencyEntry | None:
    return load(state, _entry_key(record_id), EmergencyEntry)


def check_resource_types(types: tuple[str, ...]) -> None:
    if not types or len(types) > MAX_EMERGENCY_TYPES:
        raise EmergencyError(
            f"an emergency set names 1 to {MAX_EMERGENCY_TYPES} resource types, e.g. "
            + ", ".join(DEFAULT_EMERGENCY_TYPES)
        )
    if list(types) != sorted(set(types)) or not all(_RESOURCE_TYPE.match(t) for t in types):
        raise EmergencyError(
            "the emergency set's resource types are FHIR type names, sorted, each once"
        )


def attach_emergency_wrap(
    state: State,
    patient: bytes,
    record_id: bytes,
    resource_type: str,
    version: int,
    wraps: tuple[EmergencyWrapArgs, ...],
) -> None:
    """Check a new record version's emergency wraps against the patient's policy and keep
    the one it carries. Required for a type in the set (unless optional), refused for
    one outside it or when no policy is on."""
    policy = get_policy(state, patient)
    in_set = policy is not None and policy.enabled and resource_type in policy.resource_types
    if len(wraps) > 1:
        raise EmergencyError("a record version carries at most one emergency wrap")
    if not wraps:
        if in_set and resource_type not in OPTIONAL_EMERGENCY_TYPES:
            raise EmergencyError(
                f"the patient's emergency policy covers {resource_type} records: wrap this "
                "version's content key for the emergency key too (the client does so when "
                "it knows the patient's policy); refresh the policy and encrypt again"
            )
        return
    if policy is None or not in_set:
        raise EmergencyError(
            f"no emergency policy of the patient covers {resource_type} records; "
            "leave the emergency wrap out"
        )
    wrap = wraps[0]
    if wrap.ephemeral == bytes(32) or not is_canonical_point(wrap.ephemeral):
        raise EmergencyError("an emergency wrap's ephemeral is a non-identity ristretto255 point")
    if len(wrap.sealed_key) != SEALED_EMERGENCY_KEY_SIZE:
        raise EmergencyError(
            f"an emergency-sealed key is {SEALED_EMERGENCY_KEY_SIZE} bytes, "
            f"got {len(wrap.sealed_key)}"
        )
    _keep(
        state,
        patient,
        EmergencyEntry(
            record_id, resource_type, version, wrap.ephemeral, wrap.sealed_key, policy.public_key
        ),
    )


def drop_emergency_wrap(state: State, patient: bytes, record_id: bytes) -> bool:
    """Take the record out of the patient's emergency set (its erasure); False if it
    was not in it. Requests already opened keep their snapshot."""
    if get_entry(state, record_id) is None:
        return False
    index = load(state, _index_key(patient), _EntryIndex) or _EntryIndex(())
    kept = tuple(r for r in index.record_ids if r != record_id)
    if kept:
        save(state, _index_key(patient), _EntryIndex(kept))
    else:
        state.delete(_index_key(patient))
    state.delete(_entry_key(record_id))
    return True


def _keep(state: State, patient: bytes, entry: EmergencyEntry) -> None:
    if get_entry(state, entry.record_id) is None:
        index = load(state, _index_key(patient), _EntryIndex) or _EntryIndex(())
        save(state, _index_key(patient), _EntryIndex((*index.record_ids, entry.record_id)))
    save(state, _entry_key(entry.record_id), entry)


# -- the policy method ------------------------------------------------------------------


def set_policy(state: State, call: Call, args: EmergencyPolicyArgs) -> None:
    """The patient (or their `grant` proxy) chooses the emergency set and its key, or
    opts out."""
    patient = args.patient or call.sender
    require_identity(state, patient, Role.PATIENT)
    on_behalf = acting_for(state, call, patient, ProxyScope.GRANT, "set the emergency policy")
    if args.enabled:
        _check_policy(state, args)
    elif args.resource_types or args.public_key or args.threshold or args.shares:
        raise EmergencyError("a disabled emergency policy names no types, key or shares")
    put_policy(
        state,
        EmergencyPolicy(
            patient,
            args.enabled,
            args.resource_types,
            args.public_key,
            args.threshold,
            args.shares,
            call.block.height,
            call.sender,
        ),
    )
    by_proxy = {"proxy": call.sender} if on_behalf else {}
    call.emit(
        "emergency.policy_set",
        patient=patient,
        actor=call.sender,
        enabled=int(args.enabled),
        threshold=args.threshold,
        holders=len(args.shares),
        **by_proxy,
    )


def _check_policy(state: State, args: EmergencyPolicyArgs) -> None:
    check_resource_types(args.resource_types)
    if args.public_key == bytes(32) or not is_canonical_point(args.public_key):
        raise EmergencyError("the emergency key is a non-identity ristretto255 point")
    members = [org.org_id for org in member_organisations(state)]
    named = [share.org_id for share in args.shares]
    if named != members:
        raise EmergencyError(
            "the emergency key is shared among exactly the member organisations, sorted by "
            f"org id ({', '.join(members)}); the consortium changed: set the policy again"
        )
    n = len(args.shares)
    if not 2 <= args.threshold <= n:
        raise EmergencyError(
            f"the threshold must be from 2 to the {n} organisations holding shares: "
            "no single organisation can open it alone"
        )
    for share in args.shares:
        _check_share(share)
    commitments = [share.commitment for share in args.shares]
    if not commitments_consistent(args.public_key, commitments, args.threshold):
        raise EmergencyError(
            f"the share commitments do not lie on one {args.threshold}-of-{n} sharing of "
            "the emergency key; split the key again"
        )


def _check_share(share: SealedShare) -> None:
    if share.commitment == bytes(32) or not is_canonical_point(share.commitment):
        raise EmergencyError(
            f"{share.org_id!r}'s share commitment is not a non-identity ristretto255 point"
        )
    if len(share.sealed) != WRAPPED_KEY_SIZE:
        raise EmergencyError(
            f"{share.org_id!r}'s sealed share is {len(share.sealed)} bytes, not {WRAPPED_KEY_SIZE}"
        )
