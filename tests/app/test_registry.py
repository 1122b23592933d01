"""The registry contract (RC): who registers as what, owner-only profiles, sealed
patient details."""

from __future__ import annotations

import pytest

from medchain.app import CredentialRole, RegisterArgs, Role, UpdateProfileArgs, get_identity
from medchain.crypto import AccountKeys

from .conftest import World


def test_register_and_update_own_profile(world: World) -> None:
    keys = AccountKeys.generate()
    world.credential(keys, CredentialRole.VALIDATOR, "Node A")
    world.ok(keys, "registry.register", RegisterArgs(Role.VALIDATOR, "node a", b"", b"{}"))
    world.ok(keys, "registry.update_profile", UpdateProfileArgs("node b", b'{"rack": "A"}'))
    identity = get_identity(world.ledger.state, keys.address)
    assert identity is not None
    assert (identity.role, identity.name, identity.profile) == (
        Role.VALIDATOR,
        "node b",
        b'{"rack": "A"}',
    )


@pytest.mark.parametrize("role", [Role.DOCTOR, Role.INSTITUTION, Role.DEVICE])
def test_a_self_registered_account_is_a_patient_and_nothing_else(world: World, role: Role) -> None:
    keys = AccountKeys.generate()
    before = world.entries_but_accounts()
    receipt = world.call(
        keys, "registry.register", RegisterArgs(role, "Dr. Self", keys.encryption_public_key)
    )
    assert (receipt.ok, receipt.code) == (False, "wrong_role")
    assert f"cannot register itself as a {role.value}" in receipt.message
    assert "`medchain org credential`" in receipt.message
    assert world.entries_but_accounts() == before


def test_a_validator_registers_only_with_a_validator_credential(world: World) -> None:
    keys = AccountKeys.generate()
    world.credential(keys, CredentialRole.DOCTOR)
    before = world.entries_but_accounts()
    receipt = world.call(keys, "registry.register", RegisterArgs(Role.VALIDATOR, "node", b""))
    assert (receipt.ok, receipt.code) == (False, "not_credentialed")
    assert "holds no validator credential, needed to register as a validator" in receipt.message
    assert world.entries_but_accounts() == before


def test_profile_is_owner_only(world: World, patient: AccountKeys) -> None:
    """There is no way to name another account: an update always targets the signer."""
    before = get_identity(world.ledger.state, patient.address)
    stranger = AccountKeys.generate()
    receipt = world.call(stranger, "registry.update_profile", UpdateProfileArgs("", b"hijack"))
    assert receipt.code == "not_registered"
    assert get_identity(world.ledger.state, patient.address) == before


def test_double_registration_refused(world: World, doctor: AccountKeys) -> None:
    receipt = world.call(
        doctor, "registry.register", RegisterArgs(Role.PATIENT, "", doctor.encryption_public_key)
    )
    assert receipt.code == "already_registered"


def test_patient_name_never_in_clear(world: World) -> None:
    keys = AccountKeys.generate()
    receipt = world.call(
        keys,
        "registry.register",
        RegisterArgs(Role.PATIENT, "Jane Doe", keys.encryption_public_key),
    )
    assert receipt.code == "invalid_argument" and "encrypted profile" in receipt.message
    assert get_identity(world.ledger.state, keys.address) is None


def test_readers_need_an_encryption_key(world: World) -> None:
    keys = AccountKeys.generate()
    receipt = world.call(keys, "registry.register", RegisterArgs(Role.PATIENT, "", b"short"))
    assert receipt.code == "invalid_argument"


def test_an_identity_ring_key_is_refused(world: World) -> None:
    """The identity would make every ring containing this account unusable."""
    keys = AccountKeys.generate()
    receipt = world.call(
        keys,
        "registry.register",
        RegisterArgs(Role.PATIENT, "", keys.encryption_public_key, b"", b"\x00" * 32),
    )
    assert receipt.code == "invalid_argument" and "identity" in receipt.message
