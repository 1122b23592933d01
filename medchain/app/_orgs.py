"""Organisations: the consortium's known members (hospitals, clinics, research
institutes, insurers, regulators, pharmacies, laboratories).

Each has admins (people's keys, who act for it) and its own account, an
`INSTITUTION` identity that holds the organisation's encryption key. The genesis
names the founding ones; later ones join, change or leave by proposals
(`_proposals`). An organisation that leaves stays in state with `member=False`: its
admins lose their powers and everything that consults membership (credentials,
attestations, its account) stops counting at that height.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from medchain.app._errors import (
    AlreadyRegistered,
    InvalidArgument,
    NotAnAdmin,
    UnknownOrganisation,
)
from medchain.app._registry import Identity, Role, add_identity, get_identity, identity_key
from medchain.app._state import State, load, save
from medchain.crypto import (
    ENCRYPTION_PUBLIC_KEY_SIZE,
    address_from_public_key,
    format_address,
    is_signing_public_key,
)

ORG_ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
MAX_ADMINS = 16
MAX_ORG_NAME_CHARS = 128


class OrgKind(enum.StrEnum):
    HOSPITAL = "hospital"
    CLINIC = "clinic"
    RESEARCH = "research"
    INSURER = "insurer"
    REGULATOR = "regulator"
    PHARMACY = "pharmacy"
    LABORATORY = "laboratory"


@dataclass(frozen=True, slots=True)
class Organisation:
    org_id: str
    name: str
    kind: OrgKind
    account: bytes
    """Address of the organisation's own account (an `INSTITUTION` identity)."""
    admins: tuple[bytes, ...]
    """Admin addresses, sorted."""
    member: bool
    joined_height: int
    left_height: int
    """0 while a member."""


@dataclass(frozen=True, slots=True)
class OrganisationSpec:
    """What a proposal (or the genesis) says an organisation is."""

    org_id: str
    name: str
    kind: OrgKind
    admins: tuple[bytes, ...]
    """Ed25519 public keys."""
    public_key: bytes
    """Ed25519 key of the organisation account."""
    encryption_key: bytes
    """X25519 key of the organisation account."""


@dataclass(frozen=True, slots=True)
class _OrgIndex:
    org_ids: tuple[str, ...]
    """Every organisation ever admitted, sorted."""


_INDEX_KEY = b"orgs/index"


def _org_key(org_id: str) -> bytes:
    return b"org/" + org_id.encode()


def _admin_key(address: bytes) -> bytes:
    return b"orgadmin/" + address


def _account_key(address: bytes) -> bytes:
    return b"orgacct/" + address


def get_organisation(state: State, org_id: str) -> Organisation | None:
    return load(state, _org_key(org_id), Organisation)


def organisations(state: State) -> list[Organisation]:
    """Every organisation, members and former, by org id."""
    index = load(state, _INDEX_KEY, _OrgIndex) or _OrgIndex(())
    found = [get_organisation(state, org_id) for org_id in index.org_ids]
    return [org for org in found if org is not None]


def member_organisations(state: State) -> list[Organisation]:
    return [org for org in organisations(state) if org.member]


def _member_by(state: State, key: bytes) -> Organisation | None:
    raw = state.get(key)
    org = get_organisation(state, raw.decode()) if raw is not None else None
    return org if org is not None and org.member else None


def org_of_admin(state: State, address: bytes) -> Organisation | None:
    """The member organisation `address` is an admin of, if any."""
    return _member_by(state, _admin_key(address))


def org_of_account(state: State, address: bytes) -> Organisation | None:
    """The member organisation whose own account is `address`, if any."""
    return _member_by(state, _account_key(address))


def require_admin(state: State, address: bytes) -> Organisation:
    org = org_of_admin(state, address)
    if org is None:
        raise NotAnAdmin(
            f"{format_address(address)} is not an admin of a member organisation; "
            "ask an admin of yours to act, or join the consortium by proposal"
        )
    return org


def require_org_account(
    state: State, address: bytes, kinds: tuple[OrgKind, ...] = ()
) -> Organisation:
    """The member organisation whose account is `address` (of one of `kinds`, if given)."""
    org = org_of_account(state, address)
    wanted = " or ".join(k.value for k in kinds)
    if org is None:
        raise UnknownOrganisation(
            f"{format_address(address)} is not the account of a member "
            f"{wanted + ' ' if wanted else ''}organisation; name one from `medchain org list`"
        )
    if kinds and org.kind not in kinds:
        raise UnknownOrganisation(
            f"{org.org_id!r} is a {org.kind.value} organisation; this needs a {wanted} one"
        )
    return org


def require_member(state: State, org_id: str) -> Organisation:
    org = get_organisation(state, org_id)
    if org is None or not org.member:
        known = ", ".join(o.org_id for o in member_organisations(state)) or "none"
        raise UnknownOrganisation(f"{org_id!r} is not a member organisation; members: {known}")
    return org


def check_spec(spec: OrganisationSpec) -> None:
    """The spec's fields have the right shapes (InvalidArgument saying which not)."""
    if not ORG_ID_PATTERN.fullmatch(spec.org_id):
        raise InvalidArgument(
            f"organisation id {spec.org_id!r} must be 2-32 lower-case letters, digits or "
            "hyphens, starting with a letter or digit"
        )
    if not spec.name.strip() or len(spec.name) > MAX_ORG_NAME_CHARS:
        raise InvalidArgument(
            f"organisation {spec.org_id!r} needs a name of 1 to {MAX_ORG_NAME_CHARS} characters"
        )
    if not 1 <= len(spec.admins) <= MAX_ADMINS:
        raise InvalidArgument(
            f"organisation {spec.org_id!r} needs 1 to {MAX_ADMINS} admins, not {len(spec.admins)}"
        )
    if len(set(spec.admins)) != len(spec.admins):
        raise InvalidArgument(f"organisation {spec.org_id!r} lists an admin key twice")
    for key in (*spec.admins, spec.public_key):
        if not is_signing_public_key(key):
            raise InvalidArgument(
                f"organisation {spec.org_id!r}: {key.hex()!r} is not an Ed25519 public key"
            )
    if spec.public_key in spec.admins:
        raise InvalidArgument(
            f"organisation {spec.org_id!r}: its account key must not also be an admin key"
        )
    if len(spec.encryption_key) != ENCRYPTION_PUBLIC_KEY_SIZE:
        raise InvalidArgument(
            f"organisation {spec.org_id!r}: the encryption key must be a 32-byte X25519 key"
        )


def check_admins_free(state: State, spec: OrganisationSpec) -> None:
    """No admin key is already an admin of another member organisation."""
    for key in spec.admins:
        other = org_of_admin(state, address_from_public_key(key))
        if other is not None and other.org_id != spec.org_id:
            raise InvalidArgument(
                f"{format_address(address_from_public_key(key))} is already an admin of "
                f"{other.org_id!r}; one person is an admin of one organisation"
            )


def check_account_free(state: State, spec: OrganisationSpec) -> None:
    """The organisation's account address is not registered yet (or is its own)."""
    address = address_from_public_key(spec.public_key)
    current = get_organisation(state, spec.org_id)
    if current is not None and current.account == address:
        return
    if get_identity(state, address) is not None:
        raise AlreadyRegistered(
            f"the account key of {spec.org_id!r} ({format_address(address)}) is already "
            "registered; give the organisation a fresh account key"
        )


def _admin_addresses(spec: OrganisationSpec) -> tuple[bytes, ...]:
    return tuple(sorted(address_from_public_key(key) for key in spec.admins))


def _open_account(state: State, spec: OrganisationSpec, height: int) -> bytes:
    address = address_from_public_key(spec.public_key)
    existing = get_identity(state, address)
    identity = Identity(
        address, spec.public_key, spec.encryption_key, Role.INSTITUTION, spec.name, b"", height
    )
    if existing is None:
        add_identity(state, identity)
    else:
        save(state, identity_key(address), replace(existing, name=spec.name))
    state.set(_account_key(address), spec.org_id.encode())
    return address


def admit(state: State, spec: OrganisationSpec, height: int) -> Organisation:
    """Make `spec` a member (a passed JOIN, or the genesis); checks the keys are free."""
    check_spec(spec)
    check_admins_free(state, spec)
    check_account_free(state, spec)
    account = _open_account(state, spec, height)
    org = Organisation(
        spec.org_id, spec.name, spec.kind, account, _admin_addresses(spec), True, height, 0
    )
    _write(state, org)
    index = load(state, _INDEX_KEY, _OrgIndex) or _OrgIndex(())
    save(state, _INDEX_KEY, _OrgIndex(tuple(sorted({*index.org_ids, spec.org_id}))))
    return org


def amend(state: State, spec: OrganisationSpec, height: int) -> Organisation:
    """A passed UPDATE: new name, kind, admins and keys; the org id stays."""
    check_spec(spec)
    check_admins_free(state, spec)
    check_account_free(state, spec)
    old = get_organisation(state, spec.org_id)
    assert old is not None and old.member
    _release(state, old)
    account = _open_account(state, spec, height)
    org = replace(
        old, name=spec.name, kind=spec.kind, account=account, admins=_admin_addresses(spec)
    )
    _write(state, org)
    return org


def expel(state: State, org_id: str, height: int) -> Organisation:
    """A passed LEAVE: the organisation stays in state, no longer a member."""
    old = get_organisation(state, org_id)
    assert old is not None and old.member
    _release(state, old)
    org = replace(old, member=False, left_height=height)
    save(state, _org_key(org_id), org)
    return org


def _release(state: State, org: Organisation) -> None:
    for admin in org.admins:
        state.delete(_admin_key(admin))
    state.delete(_account_key(org.account))


def _write(state: State, org: Organisation) -> None:
    save(state, _org_key(org.org_id), org)
    for admin in org.admins:
        state.set(_admin_key(admin), org.org_id.encode())
