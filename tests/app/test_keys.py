"""Key rotation: an account keeps its address, only its current key signs for it."""

from __future__ import annotations

import pytest

from medchain.app import (
    KeyRetired,
    RotateArgs,
    TransferArgs,
    get_account,
    get_identity,
    key_alias,
    rotation_message,
    sender_of,
)
from medchain.crypto import AccountKeys, address_from_public_key
from medchain.types import Tx

from .conftest import CHAIN_ID, World


def rotate_args(world: World, account: bytes, new: AccountKeys) -> RotateArgs:
    """The rotation of `account` to `new`, with the new key's proof."""
    message = rotation_message(
        CHAIN_ID, account, new.public_key, new.encryption_public_key, new.ring_public_key
    )
    return RotateArgs(
        new.public_key, new.encryption_public_key, new.ring_public_key, new.sign(message)
    )


def signed_for(world: World, keys: AccountKeys, account: bytes, method: str, args: object) -> Tx:
    """A transaction by `keys` carrying `account`'s next nonce."""
    return world.tx(keys, method, args, nonce=get_account(world.ledger.state, account).nonce)


def test_rotated_key_signs_for_the_same_account_and_the_nonce_continues(
    world: World, patient: AccountKeys, rich: AccountKeys
) -> None:
    world.ok(rich, "accounts.transfer", TransferArgs(patient.address, 50))
    new = AccountKeys.generate()
    world.ok(patient, "keys.rotate", rotate_args(world, patient.address, new))
    state = world.ledger.state
    identity = get_identity(state, patient.address)
    assert identity is not None
    assert identity.public_key == new.public_key
    assert identity.encryption_key == new.encryption_public_key
    assert identity.ring_key == new.ring_public_key
    assert key_alias(state, address_from_public_key(new.public_key)) == patient.address
    assert sender_of(state, new.public_key) == patient.address
    nonce = get_account(state, patient.address).nonce
    (receipt,) = world.run(
        signed_for(world, new, patient.address, "accounts.transfer", TransferArgs(rich.address, 5))
    )
    assert receipt.ok
    account = get_account(world.ledger.state, patient.address)
    assert (account.nonce, account.balance) == (nonce + 1, 45)


def test_the_old_key_is_retired(world: World, patient: AccountKeys, rich: AccountKeys) -> None:
    world.ok(patient, "keys.rotate", rotate_args(world, patient.address, AccountKeys.generate()))
    old = signed_for(
        world, patient, patient.address, "accounts.transfer", TransferArgs(rich.address, 1)
    )
    with pytest.raises(KeyRetired, match="current key file") as refused:
        world.ledger.check_tx(old)
    assert refused.value.code == "key_retired"
    with pytest.raises(KeyRetired):
        sender_of(world.ledger.state, patient.public_key)


def test_a_key_rotated_away_twice_is_retired_too(world: World, patient: AccountKeys) -> None:
    first, second = AccountKeys.generate(), AccountKeys.generate()
    world.ok(patient, "keys.rotate", rotate_args(world, patient.address, first))
    world.run(
        signed_for(
            world,
            first,
            patient.address,
            "keys.rotate",
            rotate_args(world, patient.address, second),
        )
    )
    assert sender_of(world.ledger.state, second.public_key) == patient.address
    with pytest.raises(KeyRetired):
        sender_of(world.ledger.state, first.public_key)


def test_the_proof_must_be_the_new_keys_signature(world: World, patient: AccountKeys) -> None:
    new, other = AccountKeys.generate(), AccountKeys.generate()
    args = rotate_args(world, patient.address, new)
    forged = RotateArgs(
        args.new_public_key, args.new_encryption_key, args.new_ring_key, other.sign(b"anything")
    )
    message = world.refused(patient, "keys.rotate", forged, "invalid_argument")
    assert "proof" in message
    for_someone_else = rotate_args(world, other.address, new)
    world.refused(patient, "keys.rotate", for_someone_else, "invalid_argument")


def test_a_key_in_use_cannot_become_the_new_key(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    message = world.refused(
        patient, "keys.rotate", rotate_args(world, patient.address, doctor), "invalid_argument"
    )
    assert "already in use" in message


def test_only_patients_rotate(world: World, doctor: AccountKeys) -> None:
    # a doctor is a patient an organisation credentialed: it may rotate; an organisation
    # account (an institution identity) may not
    org_account = world.orgs[0].account
    world.refused(
        org_account,
        "keys.rotate",
        rotate_args(world, org_account.address, AccountKeys.generate()),
        "wrong_role",
    )
