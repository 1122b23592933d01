"""Which account a signing key acts for, and changing an account's keys.

An account keeps its address when its keys change: the address is derived from the
first public key, and `keyof/<address of a key>` points every key of a rotated account
(its first one included) back to the account.
Only the account's current key (its identity's `public_key`) signs for it; an older
one is refused with `KeyRetired`. Only patients rotate: other roles' keys are named
elsewhere (genesis, organisations, credentials) by their own address.

`keys.rotate` is a planned rotation, signed by the current key, with a proof that the
holder of the new key asked for it (the new key's signature over the rotation).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods
from medchain.app._errors import InvalidArgument, KeyRetired
from medchain.app._registry import (
    ENCRYPTION_KEY_SIZE,
    Identity,
    Role,
    get_identity,
    identity_key,
    require_identity,
)
from medchain.app._state import State, save
from medchain.crypto import (
    address_from_public_key,
    format_address,
    is_ring_public_key,
    is_signing_public_key,
    verify_signature,
)
from medchain.types import tagged_hash

ROTATE_TAG = "medchain/rotate-key"


@dataclass(frozen=True, slots=True)
class RotateArgs:
    new_public_key: bytes
    new_encryption_key: bytes
    new_ring_key: bytes
    proof: bytes
    """The new key's Ed25519 signature over `rotation_message(...)`."""


@dataclass(frozen=True, slots=True)
class NewKeys:
    """The keys an account moves to, with the new key's proof that it asked to."""

    public_key: bytes
    encryption_key: bytes
    ring_key: bytes
    proof: bytes


def _alias_key(key_address: bytes) -> bytes:
    return b"keyof/" + key_address


def key_alias(state: State, key_address: bytes) -> bytes | None:
    """The account a key (by its own address) that took part in a rotation signs for or
    once signed for (the account's first key maps to the account itself); None for a
    key no rotation involved."""
    found = state.get(_alias_key(key_address))
    return None if found is None else found


def sender_of(state: State, public_key: bytes) -> bytes:
    """The account `public_key` signs for: its alias, else its own address. KeyRetired
    when the account's identity names another key (this one was rotated away).

    Runs for every transaction at admission, on apply and on each mempool recheck, so a
    key never part of a rotation costs one state read and no identity decode: only keys
    of accounts that rotated have a `keyof/` entry (see `move_keys`)."""
    own = address_from_public_key(public_key)
    account = key_alias(state, own)
    if account is None:
        return own
    identity = get_identity(state, account)
    if identity is None or identity.public_key != public_key:
        raise KeyRetired(
            f"this key no longer signs for {format_address(account)}: the account's keys "
            "were rotated; sign with the account's current key file"
        )
    return account


def rotation_message(
    chain_id: str, account: bytes, public_key: bytes, encryption_key: bytes, ring_key: bytes
) -> bytes:
    """What the new key signs to show it agrees to become `account`'s key."""
    return tagged_hash(ROTATE_TAG, chain_id.encode(), account, public_key, encryption_key, ring_key)


def check_new_keys(state: State, chain_id: str, account: bytes, new: NewKeys) -> None:
    """InvalidArgument unless `new` are well-formed keys, unused by any account, whose
    signing key signed the rotation of `account` to them on this chain."""
    if not is_signing_public_key(new.public_key):
        raise InvalidArgument("the new public key must be a valid 32-byte Ed25519 key")
    if len(new.encryption_key) != ENCRYPTION_KEY_SIZE:
        raise InvalidArgument("the new encryption key must be a 32-byte X25519 public key")
    if new.ring_key and not is_ring_public_key(new.ring_key):
        raise InvalidArgument("the new ring key must be a canonical ristretto255 point")
    require_fresh_key(state, new.public_key)
    message = rotation_message(chain_id, account, new.public_key, new.encryption_key, new.ring_key)
    if not verify_signature(new.public_key, message, new.proof):
        raise InvalidArgument(
            "the proof is not the new key's signature over this rotation (chain, account "
            "and new keys); sign it again with the new key file"
        )


def require_fresh_key(state: State, public_key: bytes) -> None:
    """InvalidArgument if `public_key` already signs for an account (its own or another)."""
    own = address_from_public_key(public_key)
    if get_identity(state, own) is not None or key_alias(state, own) is not None:
        raise InvalidArgument(
            f"the new key is already in use ({format_address(own)}); make a fresh key "
            "file with `medchain keys new`"
        )


def move_keys(state: State, call: Call, identity: Identity, new: NewKeys, via: str) -> None:
    """Make `new` the identity's keys: the new key's address becomes an alias of the
    account, and every earlier key is retired by the identity naming only the new one."""
    save(
        state,
        identity_key(identity.address),
        replace(
            identity,
            public_key=new.public_key,
            encryption_key=new.encryption_key,
            ring_key=new.ring_key,
        ),
    )
    state.set(_alias_key(address_from_public_key(new.public_key)), identity.address)
    state.set(_alias_key(identity.address), identity.address)  # the first key: retired
    call.emit(
        "keys.rotated",
        account=identity.address,
        public_key=new.public_key,
        encryption_key=new.encryption_key,
        via=via,
    )


def rotate(state: State, call: Call, args: RotateArgs) -> None:
    identity = require_identity(state, call.sender, Role.PATIENT)
    new = NewKeys(args.new_public_key, args.new_encryption_key, args.new_ring_key, args.proof)
    check_new_keys(state, call.block.chain_id, call.sender, new)
    move_keys(state, call, identity, new, "rotate")


METHODS: Methods = {"keys.rotate": (RotateArgs, rotate)}
