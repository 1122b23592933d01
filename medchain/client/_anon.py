"""Anonymous contributions from the SDK: pick decoys, seal, ring-sign, submit.

The contributor's data is de-identified and sealed to the scope's institution
alone, then signed with a linkable ring signature over a ring of registered
accounts of the scope's role, chosen at random from the registry. The chain
learns that one of the ring contributed, never which one."""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from medchain.app import AnonEntry, AnonScope, AnonSubmitArgs, CloseScopeArgs, OpenScopeArgs, Role
from medchain.client._deidentify import deidentify
from medchain.client._envelope import open_sealed, seal
from medchain.client._fhir import canonical_json, validate_resource
from medchain.client._sdk import BlobUnavailable, MedchainClient, NotAReader, UnknownParty
from medchain.crypto import ring_sign
from medchain.offchain import cid_for
from medchain.types import MedchainError, Receipt, Tx, encode, tx_id

DEFAULT_RING_SIZE = 11


class RingTooLarge(MedchainError):
    code = "ring_too_large"


@dataclass(frozen=True, slots=True)
class Contribution:
    entry: AnonEntry
    resource: dict[str, Any]


def anon_context(scope: str) -> bytes:
    return b"medchain/anon-contribution/v1\x00" + scope.encode()


def open_scope(
    client: MedchainClient,
    name: str,
    member_role: Role = Role.PATIENT,
    min_ring: int = DEFAULT_RING_SIZE,
    *,
    verified_only: bool = False,
) -> Receipt:
    """Institution: open a data set that members of `member_role` may contribute to;
    `verified_only`: only patients a member organisation attests, so that one person
    cannot fill a ring with accounts of their own."""
    return client.send("anon.open_scope", OpenScopeArgs(name, member_role, min_ring, verified_only))


def close_scope(client: MedchainClient, name: str) -> Receipt:
    return client.send("anon.close_scope", CloseScopeArgs(name))


def require_scope(client: MedchainClient, name: str) -> AnonScope:
    scope = client.chain.anon_scope(name)
    if scope is None:
        raise MedchainError(f"no anonymous scope {name!r} on this chain; check its name")
    return scope


def pick_ring(client: MedchainClient, scope: AnonScope, size: int) -> list[bytes]:
    """The caller plus `size - 1` decoys of the scope's role with ring keys (and, for a
    verified-only scope, attested by a member organisation), drawn uniformly from the
    registry; sorted, so the position reveals nothing."""
    available = client.chain.role_count(scope.member_role)
    if size > client.chain.params.max_ring_size:
        raise RingTooLarge(f"rings are limited to {client.chain.params.max_ring_size} members")
    if scope.verified_only and not client.chain.is_verified_patient(client.address):
        raise UnknownParty(
            f"scope {scope.name!r} takes only patients whose identity a member organisation "
            "verified; ask one to attest yours (`medchain org attest`), then contribute"
        )
    candidates = [i for i in range(available)]
    secrets.SystemRandom().shuffle(candidates)
    ring = {client.address}
    for index in candidates:
        if len(ring) >= size:
            break
        member = client.chain.role_member(scope.member_role, index)
        identity = client.chain.identity(member) if member else None
        if identity is None or not identity.ring_key or member in ring:
            continue
        if scope.verified_only and not client.chain.is_verified_patient(identity.address):
            continue
        ring.add(identity.address)
    if len(ring) < size:
        which = "verified " if scope.verified_only else ""
        raise RingTooLarge(
            f"only {len(ring)} {which}registered {scope.member_role.value}s with ring keys can "
            f"form the ring; ask for a smaller ring (the scope needs at least {scope.min_ring})"
        )
    return sorted(ring)


def anon_submit(
    client: MedchainClient,
    scope_name: str,
    resource: Mapping[str, Any] | str | bytes,
    ring_size: int = DEFAULT_RING_SIZE,
) -> bytes:
    """Contribute a de-identified copy of `resource` to a scope, anonymously.
    Returns the transaction id (not linked to the caller anywhere on chain)."""
    scope = require_scope(client, scope_name)
    me = client.chain.identity(client.address)
    if me is None or not me.ring_key:
        raise UnknownParty("register first (`medchain register`) so you can be part of a ring")
    ring = pick_ring(client, scope, max(ring_size, scope.min_ring))
    keys = []
    for member in ring:
        identity = client.chain.identity(member)
        assert identity is not None
        keys.append(identity.ring_key)
    recipient = client.chain.identity(scope.recipient)
    assert recipient is not None
    # a fresh pseudonym key each time: contributions are not linkable through the data
    copy = deidentify(validate_resource(resource), secrets.token_bytes(32))
    sealed = seal(
        canonical_json(copy),
        anon_context(scope_name),
        {recipient.address: recipient.encryption_key},
    )
    cid = cid_for(sealed.ciphertext)
    args = AnonSubmitArgs(scope_name, tuple(ring), cid, sealed.ciphertext_hash, sealed.wraps)
    unsigned = Tx(client.chain.chain_id, 0, b"", 0, "anon.submit", encode(args))
    signature = ring_sign(unsigned.signing_bytes(), keys, client.keys.ring_secret)
    tx = dataclasses.replace(unsigned, signature=encode(signature))
    client.chain.submit_with_body(tx, sealed.ciphertext)
    return tx_id(tx)


def contributions(client: MedchainClient, scope_name: str) -> list[Contribution]:
    """Institution: the scope's contributions, decrypted."""
    scope = require_scope(client, scope_name)
    if scope.recipient != client.address:
        raise NotAReader(
            f"contributions to {scope_name!r} are sealed to the institution that opened it"
        )
    found = []
    for entry in client.chain.anon_entries(scope_name):
        wrapped = entry.wraps[0].wrapped_key
        if not client.chain.blobs.has(entry.cid):
            raise BlobUnavailable(f"the contribution {entry.cid} is not in this node's blob store")
        plain = open_sealed(
            client.keys, wrapped, client.chain.blobs.get(entry.cid), anon_context(scope_name)
        )
        found.append(Contribution(entry, dict(json.loads(plain))))
    return found
