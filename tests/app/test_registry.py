"""The registry contract (RC): roles, owner-only profiles, sealed patient details."""

from __future__ import annotations

from medchain.app import RegisterArgs, Role, UpdateProfileArgs, get_identity
from medchain.crypto import AccountKeys

from .conftest import World


def test_register_and_update_own_profile(world: World) -> None:
    keys = AccountKeys.generate()
    world.ok(
        keys,
        "registry.register",
        RegisterArgs(Role.DOCTOR, "Dr. Grey", keys.encryption_public_key, b"{}"),
    )
    world.ok(keys, "registry.update_profile", UpdateProfileArgs("Dr. M. Grey", b'{"ward": "A"}'))
    identity = get_identity(world.ledger.state, keys.address)
    assert identity is not None
    assert (identity.role, identity.name, identity.profile) == (
        Role.DOCTOR,
        "Dr. M. Grey",
        b'{"ward": "A"}',
    )


def test_profile_is_owner_only(world: World, doctor: AccountKeys) -> None:
    """There is no way to name another account: an update always targets the signer."""
    stranger = AccountKeys.generate()
    receipt = world.call(stranger, "registry.update_profile", UpdateProfileArgs("hijack", b""))
    assert receipt.code == "not_registered"
    identity = get_identity(world.ledger.state, doctor.address)
    assert identity is not None and identity.name == "Dr. Grey"


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
    receipt = world.call(keys, "registry.register", RegisterArgs(Role.DOCTOR, "Dr. X", b"short"))
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
