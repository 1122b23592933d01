"""Key recovery with guardians: policy, request, approvals, waiting period, completion."""

from __future__ import annotations

import pytest

from medchain.app import (
    ApproveRecoveryArgs,
    ClearRecoveryPolicyArgs,
    KeyRetired,
    RecoveryRequestArgs,
    RecoveryStatus,
    RequestRecoveryArgs,
    Role,
    SetRecoveryPolicyArgs,
    ShareRef,
    TransferArgs,
    get_account,
    get_identity,
    get_recovery_request,
    guardian_recovery_requests,
    new_recovery_id,
    notifications_of,
    open_recovery_request,
    recovery_requests_of,
    rotation_message,
    sender_of,
)
from medchain.crypto import AccountKeys
from medchain.types import ChainParams

from .conftest import CHAIN_ID, OrgKeys, World, fake_blob, make_world

DELAY_MS = 10
"""Block time advances 1 ms per block in the test world."""


@pytest.fixture
def world(validator: AccountKeys, rich: AccountKeys, founder: OrgKeys) -> World:
    params = ChainParams(unbonding_blocks=3, recovery_min_delay_ms=DELAY_MS)
    return make_world((founder,), validator, rich, params)


@pytest.fixture
def guardians(world: World) -> list[AccountKeys]:
    people = sorted((AccountKeys.generate() for _ in range(3)), key=lambda k: k.address)
    for keys in people:
        world.register(keys, Role.PATIENT)
    return people


def policy_args(
    guardians: list[AccountKeys], threshold: int = 2, delay_ms: int = DELAY_MS
) -> SetRecoveryPolicyArgs:
    kit_cid, kit_hash = fake_blob(b"kit")
    shares = tuple(ShareRef(g.address, *fake_blob(b"share " + g.address)) for g in guardians)
    return SetRecoveryPolicyArgs(
        tuple(g.address for g in guardians), threshold, delay_ms, kit_cid, kit_hash, shares
    )


def request_args(patient: bytes, new: AccountKeys) -> RequestRecoveryArgs:
    message = rotation_message(
        CHAIN_ID, patient, new.public_key, new.encryption_public_key, new.ring_public_key
    )
    return RequestRecoveryArgs(
        patient, new.public_key, new.encryption_public_key, new.ring_public_key, new.sign(message)
    )


def requested(world: World, patient: AccountKeys, new: AccountKeys) -> bytes:
    """The id of a recovery request `new` opens for `patient`."""
    nonce = world.nonces.get(new.address, 0)
    world.ok(new, "recovery.request", request_args(patient.address, new))
    return new_recovery_id(new.address, nonce)


def approve(world: World, guardian: AccountKeys, request_id: bytes) -> None:
    cid, digest = fake_blob(b"resealed " + guardian.address)
    world.ok(guardian, "recovery.approve", ApproveRecoveryArgs(request_id, cid, digest))


def approved_by_two(
    world: World, patient: AccountKeys, guardians: list[AccountKeys], new: AccountKeys
) -> bytes:
    """A request by `new` for `patient` that the first two guardians approved."""
    request_id = requested(world, patient, new)
    approve(world, guardians[0], request_id)
    approve(world, guardians[1], request_id)
    return request_id


@pytest.fixture
def protected(world: World, patient: AccountKeys, guardians: list[AccountKeys]) -> AccountKeys:
    """The patient, with 3 guardians of whom 2 must approve."""
    world.ok(patient, "recovery.set_policy", policy_args(guardians))
    return patient


def test_two_of_three_guardians_and_the_delay_recover_the_account(
    world: World, protected: AccountKeys, guardians: list[AccountKeys], rich: AccountKeys
) -> None:
    patient, new = protected, AccountKeys.generate()
    world.ok(rich, "accounts.transfer", TransferArgs(patient.address, 100))
    request_id = requested(world, patient, new)
    assert [
        r.request_id for r in guardian_recovery_requests(world.ledger.state, guardians[0].address)
    ] == [request_id]
    approve(world, guardians[0], request_id)
    approve(world, guardians[2], request_id)
    found = get_recovery_request(world.ledger.state, request_id)
    assert found is not None and found.ready_ms == world.now_ms() - 1 + DELAY_MS
    world.empty_blocks(DELAY_MS)
    world.ok(new, "recovery.complete", RecoveryRequestArgs(request_id))

    state = world.ledger.state
    identity = get_identity(state, patient.address)
    assert identity is not None and identity.public_key == new.public_key
    assert identity.encryption_key == new.encryption_public_key
    done = get_recovery_request(state, request_id)
    assert done is not None and done.status is RecoveryStatus.COMPLETED
    assert open_recovery_request(state, patient.address) is None
    assert guardian_recovery_requests(state, guardians[0].address) == []
    # the new key signs for the same address and carries its nonce on
    nonce = get_account(state, patient.address).nonce
    transfer = world.tx(new, "accounts.transfer", TransferArgs(rich.address, 1), nonce=nonce)
    assert world.run(transfer)[0].ok
    assert get_account(world.ledger.state, patient.address).nonce == nonce + 1
    # the old key is refused
    old = world.tx(patient, "accounts.transfer", TransferArgs(rich.address, 1), nonce=nonce + 1)
    with pytest.raises(KeyRetired):
        world.ledger.check_tx(old)
    kinds = [n.kind for n in notifications_of(world.ledger.state, patient.address)]
    assert kinds == [
        "recovery.requested",
        "recovery.approved",
        "recovery.approved",
        "recovery.completed",
    ]


def test_one_guardian_is_not_enough(
    world: World, protected: AccountKeys, guardians: list[AccountKeys]
) -> None:
    new = AccountKeys.generate()
    request_id = requested(world, protected, new)
    approve(world, guardians[1], request_id)
    world.empty_blocks(DELAY_MS * 3)
    message = world.refused(
        new, "recovery.complete", RecoveryRequestArgs(request_id), "recovery_not_ready"
    )
    assert "1 of the 2 guardian approvals" in message
    assert sender_of(world.ledger.state, protected.public_key) == protected.address


def test_complete_is_refused_before_the_delay(
    world: World, protected: AccountKeys, guardians: list[AccountKeys]
) -> None:
    new = AccountKeys.generate()
    request_id = approved_by_two(world, protected, guardians, new)
    world.empty_blocks(DELAY_MS - 3)
    message = world.refused(
        new, "recovery.complete", RecoveryRequestArgs(request_id), "recovery_not_ready"
    )
    assert "waiting period" in message


def test_the_old_key_cancels_a_recovery_it_did_not_ask_for(
    world: World, protected: AccountKeys, guardians: list[AccountKeys]
) -> None:
    thief = AccountKeys.generate()
    request_id = approved_by_two(world, protected, guardians, thief)
    world.ok(protected, "recovery.cancel", RecoveryRequestArgs(request_id))
    world.empty_blocks(DELAY_MS)
    message = world.refused(
        thief, "recovery.complete", RecoveryRequestArgs(request_id), "recovery_error"
    )
    assert "cancelled" in message
    found = get_recovery_request(world.ledger.state, request_id)
    assert found is not None and found.status is RecoveryStatus.CANCELLED
    assert sender_of(world.ledger.state, protected.public_key) == protected.address


def test_only_the_patient_cancels_and_only_the_new_key_completes(
    world: World, protected: AccountKeys, guardians: list[AccountKeys]
) -> None:
    new = AccountKeys.generate()
    request_id = requested(world, protected, new)
    world.refused(
        guardians[0], "recovery.cancel", RecoveryRequestArgs(request_id), "recovery_error"
    )
    approve(world, guardians[0], request_id)
    approve(world, guardians[1], request_id)
    world.empty_blocks(DELAY_MS)
    world.refused(
        guardians[0], "recovery.complete", RecoveryRequestArgs(request_id), "recovery_error"
    )


def test_approvals_come_once_from_each_guardian(
    world: World, protected: AccountKeys, guardians: list[AccountKeys], doctor: AccountKeys
) -> None:
    request_id = requested(world, protected, AccountKeys.generate())
    cid, digest = fake_blob(b"x")
    args = ApproveRecoveryArgs(request_id, cid, digest)
    world.refused(doctor, "recovery.approve", args, "recovery_error")
    approve(world, guardians[0], request_id)
    message = world.refused(guardians[0], "recovery.approve", args, "recovery_error")
    assert "already approved" in message


def test_one_open_request_per_patient_and_no_policy_change_meanwhile(
    world: World, protected: AccountKeys, guardians: list[AccountKeys]
) -> None:
    requested(world, protected, AccountKeys.generate())
    second = AccountKeys.generate()
    world.refused(
        second, "recovery.request", request_args(protected.address, second), "recovery_error"
    )
    world.refused(protected, "recovery.set_policy", policy_args(guardians), "recovery_error")
    world.refused(protected, "recovery.clear_policy", ClearRecoveryPolicyArgs(), "recovery_error")
    assert len(recovery_requests_of(world.ledger.state, protected.address)) == 1


def test_a_request_is_signed_by_its_fresh_new_key(
    world: World, protected: AccountKeys, doctor: AccountKeys
) -> None:
    # a registered account cannot ask to become the patient's key
    world.refused(
        doctor, "recovery.request", request_args(protected.address, doctor), "recovery_error"
    )
    new, other = AccountKeys.generate(), AccountKeys.generate()
    world.refused(new, "recovery.request", request_args(protected.address, other), "recovery_error")
    assert open_recovery_request(world.ledger.state, protected.address) is None


def test_no_policy_no_recovery(world: World, patient: AccountKeys) -> None:
    new = AccountKeys.generate()
    message = world.refused(
        new, "recovery.request", request_args(patient.address, new), "recovery_error"
    )
    assert "no recovery policy" in message


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        ("threshold_one", "threshold"),
        ("threshold_above", "threshold"),
        ("short_delay", "waiting period"),
        ("one_guardian", "between 2 and 10"),
        ("unsorted", "sorted"),
        ("self", "own guardian"),
        ("missing_share", "one share per guardian"),
        ("unregistered", "not registered"),
    ],
)
def test_a_policy_is_checked(
    world: World, patient: AccountKeys, guardians: list[AccountKeys], change: str, expect: str
) -> None:
    args = policy_args(guardians)
    stranger = AccountKeys.generate()
    variants = {
        "threshold_one": lambda: policy_args(guardians, threshold=1),
        "threshold_above": lambda: policy_args(guardians, threshold=4),
        "short_delay": lambda: policy_args(guardians, delay_ms=DELAY_MS - 1),
        "one_guardian": lambda: policy_args(guardians[:1], threshold=1),
        "unsorted": lambda: policy_args(guardians[::-1]),
        "self": lambda: policy_args(sorted([*guardians[:2], patient], key=lambda k: k.address)),
        "missing_share": lambda: args.__class__(
            args.guardians, 2, DELAY_MS, args.kit_cid, args.kit_hash, args.shares[:2]
        ),
        "unregistered": lambda: policy_args(
            sorted([*guardians[:2], stranger], key=lambda k: k.address)
        ),
    }
    code = "not_registered" if change == "unregistered" else "invalid_argument"
    message = world.refused(patient, "recovery.set_policy", variants[change](), code)
    assert expect in message


def test_clearing_the_policy(world: World, protected: AccountKeys) -> None:
    world.ok(protected, "recovery.clear_policy", ClearRecoveryPolicyArgs())
    world.refused(protected, "recovery.clear_policy", ClearRecoveryPolicyArgs(), "recovery_error")
