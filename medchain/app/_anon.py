"""Anonymous submission (paper 002): a member of a ring of registered accounts
contributes data without revealing which member it is.

A research institution opens a *scope* (a data set, a reporting channel) naming
who may contribute (a role) and the smallest ring it accepts. A contribution is
a transaction with no sender, nonce or fee, signed by a linkable ring signature
(bLSAG on ristretto255) over the ring it names. The chain checks the ring and
the signature, refuses a key image already used in the scope (one contribution
per member per scope, and no replay), stores the contribution sealed to the
scope's institution, and records no signer.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medchain.app._attestations import is_verified_patient
from medchain.app._context import Call, Methods
from medchain.app._errors import AlreadyRegistered, InvalidArgument, NotOwner, TxRejected
from medchain.app._keywrap import KeyWrap, check_wraps
from medchain.app._orgs import require_org_account
from medchain.app._records import check_blob
from medchain.app._registry import Role, get_identity
from medchain.app._state import State, load, save
from medchain.crypto import format_address, tagged_hash
from medchain.types import ChainParams

ANONYMOUS_METHODS = frozenset({"anon.submit"})
"""Methods whose transactions are ring-signed instead of signed by one account."""
MIN_RING = 2


class RingRejected(TxRejected):
    """The ring of an anonymous transaction does not satisfy its scope."""

    code = "ring_rejected"


class KeyImageReused(TxRejected):
    """The ring signature's key image was already used in this scope."""

    code = "key_image_reused"


class UnknownScope(TxRejected):
    code = "unknown_scope"


@dataclass(frozen=True, slots=True)
class AnonScope:
    name: str
    recipient: bytes
    """The institution that opened it; every contribution is sealed to it alone."""
    member_role: Role
    min_ring: int
    open: bool
    count: int
    opened_height: int
    verified_only: bool = False
    """Every ring member must be a patient a member organisation attests."""


@dataclass(frozen=True, slots=True)
class OpenScopeArgs:
    name: str
    member_role: Role
    min_ring: int
    verified_only: bool = False


@dataclass(frozen=True, slots=True)
class CloseScopeArgs:
    name: str


@dataclass(frozen=True, slots=True)
class AnonSubmitArgs:
    scope: str
    ring: tuple[bytes, ...]
    """Addresses of the ring members, sorted; the signer is one of them."""
    cid: str
    ciphertext_hash: bytes
    wraps: tuple[KeyWrap, ...]
    """The contribution's content key, wrapped for the scope's institution only."""


@dataclass(frozen=True, slots=True)
class AnonEntry:
    scope: str
    index: int
    cid: str
    ciphertext_hash: bytes
    wraps: tuple[KeyWrap, ...]
    key_image: bytes
    ring: tuple[bytes, ...]
    height: int
    tx_id: bytes


MAX_SCOPE_CHARS = 64


def _scope_id(name: str) -> bytes:
    return tagged_hash("medchain/anon-scope", name.encode())[:16]


def _scope_key(name: str) -> bytes:
    return b"anon/scope/" + _scope_id(name)


def _entry_key(name: str, index: int) -> bytes:
    return b"anon/entry/" + _scope_id(name) + index.to_bytes(8, "big")


def _image_key(name: str, key_image: bytes) -> bytes:
    return b"anon/image/" + _scope_id(name) + key_image


def get_scope(state: State, name: str) -> AnonScope | None:
    return load(state, _scope_key(name), AnonScope)


def scope_entries(state: State, name: str) -> list[AnonEntry]:
    scope = get_scope(state, name)
    if scope is None:
        return []
    found = [load(state, _entry_key(name, i), AnonEntry) for i in range(scope.count)]
    return [e for e in found if e is not None]


def key_image_used(state: State, scope: str, key_image: bytes) -> bool:
    return state.get(_image_key(scope, key_image)) is not None


def ring_public_keys(state: State, args: AnonSubmitArgs, params: ChainParams) -> list[bytes]:
    """The ring keys of the members, once the ring is checked against its scope.
    Raises a TxRejected subclass: an unacceptable ring makes the transaction invalid."""
    scope = get_scope(state, args.scope)
    if scope is None:
        raise UnknownScope(f"no anonymous scope {args.scope!r}; ask the institution for its name")
    if not scope.open:
        raise UnknownScope(f"scope {args.scope!r} is closed to new contributions")
    ring = args.ring
    if list(ring) != sorted(set(ring)):
        raise RingRejected("ring members must be sorted addresses without duplicates")
    if not max(scope.min_ring, MIN_RING) <= len(ring) <= params.max_ring_size:
        raise RingRejected(
            f"scope {args.scope!r} takes rings of {max(scope.min_ring, MIN_RING)} to "
            f"{params.max_ring_size} members; this one has {len(ring)}"
        )
    keys = []
    for member in ring:
        identity = get_identity(state, member)
        if identity is None or identity.role is not scope.member_role or not identity.ring_key:
            raise RingRejected(
                f"ring member {format_address(member)} is not a registered "
                f"{scope.member_role.value} with a ring key; pick ring members from the registry"
            )
        if scope.verified_only and not is_verified_patient(state, member):
            raise RingRejected(
                f"scope {args.scope!r} takes only verified patients, and no member "
                f"organisation attests ring member {format_address(member)}; pick "
                "attested patients"
            )
        keys.append(identity.ring_key)
    return keys


def require_fresh_key_image(state: State, scope: str, key_image: bytes) -> None:
    if key_image_used(state, scope, key_image):
        raise KeyImageReused(
            f"this ring signature's key image was already used in scope {scope!r}: "
            "each member may contribute once per scope (or this is a replay)"
        )


def mark_key_image(state: State, scope: str, key_image: bytes) -> None:
    require_fresh_key_image(state, scope, key_image)
    state.set(_image_key(scope, key_image), b"\x01")


# -- methods ------------------------------------------------------------------------


def open_scope(state: State, call: Call, args: OpenScopeArgs) -> None:
    require_org_account(state, call.sender)
    if not args.name or len(args.name) > MAX_SCOPE_CHARS:
        raise InvalidArgument(f"a scope name is 1 to {MAX_SCOPE_CHARS} characters")
    if get_scope(state, args.name) is not None:
        raise AlreadyRegistered(f"scope {args.name!r} already exists; choose another name")
    if not MIN_RING <= args.min_ring <= call.block.params.max_ring_size:
        raise InvalidArgument(
            f"the minimum ring size must be {MIN_RING} to {call.block.params.max_ring_size}"
        )
    scope = AnonScope(
        args.name,
        call.sender,
        args.member_role,
        args.min_ring,
        True,
        0,
        call.block.height,
        args.verified_only,
    )
    save(state, _scope_key(args.name), scope)
    call.emit("anon.scope_opened", scope=args.name, institution=call.sender)


def close_scope(state: State, call: Call, args: CloseScopeArgs) -> None:
    scope = get_scope(state, args.name)
    if scope is None:
        raise InvalidArgument(f"no scope {args.name!r}")
    if scope.recipient != call.sender:
        raise NotOwner(f"only {format_address(scope.recipient)} may close scope {args.name!r}")
    save(state, _scope_key(args.name), replace(scope, open=False))
    call.emit("anon.scope_closed", scope=args.name)


def submit(state: State, call: Call, args: AnonSubmitArgs) -> None:
    """Store a contribution; the ring and key image were checked with the signature."""
    scope = get_scope(state, args.scope)
    assert scope is not None, "checked with the ring signature"
    check_blob(args.cid, args.ciphertext_hash)
    check_wraps(args.wraps, (scope.recipient,))
    entry = AnonEntry(
        args.scope,
        scope.count,
        args.cid,
        args.ciphertext_hash,
        args.wraps,
        call.key_image,
        args.ring,
        call.block.height,
        call.tx_id,
    )
    save(state, _entry_key(args.scope, scope.count), entry)
    save(state, _scope_key(args.scope), replace(scope, count=scope.count + 1))
    call.emit("anon.contributed", scope=args.scope, index=entry.index)


METHODS: Methods = {
    "anon.open_scope": (OpenScopeArgs, open_scope),
    "anon.close_scope": (CloseScopeArgs, close_scope),
    "anon.submit": (AnonSubmitArgs, submit),
}
