"""Registry contract (paper 002's RC): one identity per account, with a role, an
owner-only profile, and — for patients — the append-only list of their records.

A patient's personal details never sit on chain in clear: their `name` must be
empty and their profile is a blob the SDK encrypts to the patient's own key.
Doctors, institutions, validators and devices are public directory entries.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._errors import AlreadyRegistered, InvalidArgument, NotRegistered, WrongRole
from medchain.app._state import State, load, save
from medchain.crypto import format_address, is_ring_public_key


class Role(enum.StrEnum):
    PATIENT = "patient"
    DOCTOR = "doctor"
    INSTITUTION = "institution"
    DEVICE = "device"
    VALIDATOR = "validator"


@dataclass(frozen=True, slots=True)
class Identity:
    address: bytes
    public_key: bytes
    encryption_key: bytes
    """X25519 public key that record keys are wrapped for (empty for validators)."""
    role: Role
    name: str
    profile: bytes
    registered_height: int
    record_count: int = 0
    ring_key: bytes = b""
    """ristretto255 public key for linkable ring signatures (anonymous submissions);
    empty if the account takes no part in them."""


@dataclass(frozen=True, slots=True)
class RegisterArgs:
    role: Role
    name: str
    encryption_key: bytes
    profile: bytes = b""
    ring_key: bytes = b""


@dataclass(frozen=True, slots=True)
class UpdateProfileArgs:
    name: str
    profile: bytes


MAX_NAME_CHARS = 128
MAX_PROFILE_BYTES = 8_192
ENCRYPTION_KEY_SIZE = 32


def identity_key(address: bytes) -> bytes:
    return b"id/" + address


def patient_record_key(patient: bytes, index: int) -> bytes:
    return b"rc/" + patient + index.to_bytes(8, "big")


def get_identity(state: State, address: bytes) -> Identity | None:
    return load(state, identity_key(address), Identity)


def require_identity(state: State, address: bytes, *roles: Role) -> Identity:
    """The identity at `address`, which must hold one of `roles` (any role if none given)."""
    identity = get_identity(state, address)
    if identity is None:
        raise NotRegistered(
            f"{format_address(address)} is not registered; "
            "register it first with `medchain register`"
        )
    if roles and identity.role not in roles:
        wanted = " or ".join(r.value for r in roles)
        raise WrongRole(
            f"{format_address(address)} is registered as {identity.role.value}, "
            f"this needs a {wanted}"
        )
    return identity


def _check_name_and_profile(role: Role, name: str, profile: bytes) -> None:
    if role is Role.PATIENT and name:
        raise InvalidArgument(
            "a patient's name must not be stored in clear; put it in the encrypted profile"
        )
    if role is not Role.PATIENT and not name.strip():
        raise InvalidArgument(f"a {role.value} needs a display name")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidArgument(f"names are limited to {MAX_NAME_CHARS} characters")
    if len(profile) > MAX_PROFILE_BYTES:
        raise InvalidArgument(f"profiles are limited to {MAX_PROFILE_BYTES} bytes")


def register_identity(state: State, call: Call, args: RegisterArgs) -> None:
    """Register the sender with `args` once its role is allowed (`_registration`)."""
    if get_identity(state, call.sender) is not None:
        raise AlreadyRegistered(
            f"{format_address(call.sender)} is already registered; "
            "use `registry.update_profile` to change its profile"
        )
    _check_name_and_profile(args.role, args.name, args.profile)
    needs_key = args.role is not Role.VALIDATOR
    if (needs_key or args.encryption_key) and len(args.encryption_key) != ENCRYPTION_KEY_SIZE:
        raise InvalidArgument("the encryption key must be a 32-byte X25519 public key")
    if args.ring_key and not is_ring_public_key(args.ring_key):
        raise InvalidArgument(
            "the ring key must be a canonical ristretto255 point, not the identity"
        )
    identity = Identity(
        address=call.sender,
        public_key=call.sender_key,
        encryption_key=args.encryption_key,
        role=args.role,
        name=args.name,
        profile=args.profile,
        registered_height=call.block.height,
        ring_key=args.ring_key,
    )
    add_identity(state, identity)
    call.emit("registered", address=call.sender, role=args.role.value)


def add_identity(state: State, identity: Identity) -> None:
    """Store a new identity and list it in its role's directory."""
    save(state, identity_key(identity.address), identity)
    _index_role(state, identity.role, identity.address)


def _role_count_key(role: Role) -> bytes:
    return b"roles/" + role.value.encode() + b"/n"


def _role_entry_key(role: Role, index: int) -> bytes:
    return b"roles/" + role.value.encode() + b"/" + index.to_bytes(8, "big")


def _index_role(state: State, role: Role, address: bytes) -> None:
    """Append to the role's directory: how the SDK finds decoys for a ring without
    scanning the state."""
    raw = state.get(_role_count_key(role))
    count = int.from_bytes(raw, "big") if raw else 0
    state.set(_role_entry_key(role, count), address)
    state.set(_role_count_key(role), (count + 1).to_bytes(8, "big"))


def role_count(state: State, role: Role) -> int:
    raw = state.get(_role_count_key(role))
    return int.from_bytes(raw, "big") if raw else 0


def role_member(state: State, role: Role, index: int) -> bytes | None:
    """The `index`-th account registered with `role` (in registration order)."""
    return state.get(_role_entry_key(role, index))


def update_profile(state: State, call: Call, args: UpdateProfileArgs) -> None:
    identity = require_identity(state, call.sender)
    _check_name_and_profile(identity.role, args.name, args.profile)
    save(state, identity_key(call.sender), replace(identity, name=args.name, profile=args.profile))
    call.emit("profile_updated", address=call.sender)


def subjoin_record(state: State, patient: bytes, record_id: bytes) -> None:
    """Append a record to the patient's list; there is no way to remove one."""
    identity = require_identity(state, patient, Role.PATIENT)
    state.set(patient_record_key(patient, identity.record_count), record_id)
    save(state, identity_key(patient), replace(identity, record_count=identity.record_count + 1))


def patient_records(state: State, patient: bytes) -> list[bytes]:
    identity = get_identity(state, patient)
    if identity is None:
        return []
    result: list[bytes] = []
    for index in range(identity.record_count):
        record_id = state.get(patient_record_key(patient, index))
        assert record_id is not None, "patient record list has a hole"
        result.append(record_id)
    return result


METHODS: Methods = {
    "registry.update_profile": (UpdateProfileArgs, update_profile),
}
