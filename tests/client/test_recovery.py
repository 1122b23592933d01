"""Key recovery and planned rotation through the SDK on a LocalChain: a patient who
lost their key file gets the account back with 2 of 3 guardians and reads an old
record; one guardian is not enough; a planned rotation re-wraps the current records."""

from __future__ import annotations

from typing import Any

import pytest

from medchain.app import KeyRetired, RecoveryStatus, Role, UpdateProfileArgs
from medchain.client import MedchainClient, RecoveryKitError, new_key_file_keys
from medchain.client._recovery_kit import open_share, share_context
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from medchain.types import TxFailed
from tests.api.harness import make_chain

NOTE = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "blood pressure"},
    "subject": {"reference": "Patient/example"},
}


def _note(text: str) -> dict[str, Any]:
    return {**NOTE, "code": {"text": text}}


class Scene:
    """A patient with a record of two versions and three guardians, 2 to approve, and
    a waiting period of 1 ms (each block is at least 1 ms after its parent)."""

    def __init__(self) -> None:
        self.chain: LocalChain = make_chain(recovery_min_delay_ms=1)
        self.patient = self.client()
        self.guardians = [self.client() for _ in range(3)]
        self.record_id = self.patient.put_record(self.patient.address, _note("first"))
        self.patient.add_version(self.record_id, _note("second"))
        guardians = [g.address for g in self.guardians]
        assert self.patient.set_up_recovery(guardians, 2, delay_ms=1).ok

    def client(self, keys: AccountKeys | None = None, register: bool = True) -> MedchainClient:
        client = MedchainClient(keys or AccountKeys.generate(), self.chain)
        if register:
            client.register(Role.PATIENT, "")
        return client

    def guardian(self, address: bytes) -> MedchainClient:
        return next(g for g in self.guardians if g.address == address)


@pytest.fixture
def scene() -> Scene:
    return Scene()


def test_two_of_three_guardians_recover_the_account_and_its_old_records(scene: Scene) -> None:
    patient = scene.patient.address
    new = scene.client(register=False)  # the patient's new key file; the old one is lost
    request_id = new.request_recovery(patient)
    asked = scene.guardians[1].recovery_requests_to_approve()
    assert [r.request_id for r in asked] == [request_id]
    assert scene.guardians[0].approve_recovery(request_id).ok
    assert scene.guardians[2].approve_recovery(request_id).ok

    restored = new.complete_recovery(request_id)
    assert restored.address == patient and new.address == patient
    assert scene.patient.keys.encryption_secret in restored.retired_encryption_secrets
    assert new.read_record(scene.record_id, 1) == _note("first")
    assert new.read_record(scene.record_id) == _note("second")
    # the records were re-wrapped: the new key alone, without the old secrets, opens them
    alone = MedchainClient(
        AccountKeys(restored.signing_seed, restored.encryption_secret, patient), scene.chain
    )
    assert alone.read_record(scene.record_id) == _note("second")
    # the old key signs for nothing any more; the new one carries the account's nonce on
    with pytest.raises(KeyRetired):
        scene.patient.send("registry.update_profile", _profile())
    assert new.put_record(patient, _note("after")) is not None
    (request,) = new.recovery_requests()
    assert request.status is RecoveryStatus.COMPLETED
    # a new kit and new shares, holding the new secret too
    policy = new.recovery_policy()
    assert policy is not None and policy.set_height > request.closed_height


def _profile() -> UpdateProfileArgs:
    return UpdateProfileArgs("", b"")


def test_one_guardian_is_not_enough(scene: Scene) -> None:
    new = scene.client(register=False)
    request_id = new.request_recovery(scene.patient.address)
    assert scene.guardians[1].approve_recovery(request_id).ok
    with pytest.raises(TxFailed) as refused:
        new.complete_recovery(request_id)
    assert refused.value.receipt.code == "recovery_not_ready"
    assert scene.patient.read_record(scene.record_id) == _note("second")


def test_the_old_key_cancels_a_recovery_it_did_not_ask_for(scene: Scene) -> None:
    thief = scene.client(register=False)
    request_id = thief.request_recovery(scene.patient.address)
    for guardian in scene.guardians[:2]:
        assert guardian.approve_recovery(request_id).ok
    assert scene.patient.cancel_recovery().ok
    (request,) = scene.patient.recovery_requests()
    assert request.status is RecoveryStatus.CANCELLED
    with pytest.raises(Exception, match="cancelled"):
        thief.complete_recovery(request_id)
    assert scene.patient.read_record(scene.record_id) == _note("second")


def test_a_guardian_opens_only_their_own_share(scene: Scene) -> None:
    new = scene.client(register=False)
    request_id = new.request_recovery(scene.patient.address)
    policy = scene.patient.recovery_policy()
    assert policy is not None
    stranger = scene.client()
    stranger_share = policy.shares[0]
    # a non-guardian cannot open a guardian's sealed share, nor approve
    with pytest.raises(RecoveryKitError):
        open_share(
            scene.chain.blobs.get(stranger_share.cid),
            stranger.keys.decryption_keys,
            share_context(scene.patient.address, stranger_share.guardian),
        )
    with pytest.raises(Exception, match="holds no share"):
        stranger.approve_recovery(request_id)


def test_planned_rotation_rewraps_current_records(scene: Scene) -> None:
    second = scene.patient.put_record(scene.patient.address, _note("other"))
    old = scene.patient.keys
    new = new_key_file_keys(old)
    assert scene.patient.rotate_keys(new).ok
    identity = scene.chain.identity(old.address)
    assert identity is not None and identity.public_key == new.public_key
    alone = MedchainClient(
        AccountKeys(new.signing_seed, new.encryption_secret, old.address), scene.chain
    )
    assert alone.read_record(scene.record_id) == _note("second")
    assert alone.read_record(scene.record_id, 1) == _note("first")
    assert alone.read_record(second) == _note("other")
    with pytest.raises(KeyRetired):
        MedchainClient(old, scene.chain).send("registry.update_profile", _profile())
    # the kit was re-issued: a recovery now restores both secrets
    lost = scene.client(register=False)
    request_id = lost.request_recovery(old.address)
    for guardian in scene.guardians[1:]:
        assert guardian.approve_recovery(request_id).ok
    restored = lost.complete_recovery(request_id)
    assert {old.encryption_secret, new.encryption_secret} <= set(
        restored.retired_encryption_secrets
    )
