"""Key recovery on real node processes: a patient with three guardians deletes their
key file, makes a new one and asks to recover through one node; two guardians approve
through two others; once the waiting period has passed the new key completes and reads
the patient's old record, and every node agrees on the chain. Marked slow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from medchain.app import RecoveryStatus, Role
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, load_keys, save_keys
from medchain.types import ChainParams, TxFailed
from tests.node.netharness import PATIENCE_S, LiveNet, live_net, wait_for

pytestmark = pytest.mark.slow

DELAY_MS = 3_000
"""The waiting period: short enough to wait out, long enough to span several blocks."""
NOTE = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"text": "blood pressure"},
    "subject": {"reference": "Patient/p"},
}


@pytest.fixture
def net(tmp_path: Path) -> Iterator[LiveNet]:
    params = ChainParams(recovery_min_delay_ms=DELAY_MS)
    with live_net(tmp_path, params=params) as running:
        running.start()
        yield running


def test_a_patient_recovers_with_two_of_three_guardians(net: LiveNet, tmp_path: Path) -> None:
    with ExitStack() as stack:

        def client(keys: AccountKeys, node: str) -> MedchainClient:
            return MedchainClient(keys, stack.enter_context(HttpChain(net.url(node))))

        patient_keys, new_keys, *guardian_keys = net.fund(5)
        key_file = tmp_path / "patient.key"
        save_keys(key_file, patient_keys)
        patient = client(load_keys(key_file), "node0")
        patient.register(Role.PATIENT, "")
        guardians = [client(k, f"node{i + 1}") for i, k in enumerate(guardian_keys)]
        for guardian in guardians:
            guardian.register(Role.PATIENT, "")
        record_id = patient.put_record(patient.address, NOTE)
        assert patient.set_up_recovery([g.address for g in guardians], 2, DELAY_MS).ok

        key_file.unlink()  # the key file is lost
        new_file = tmp_path / "patient-new.key"
        save_keys(new_file, new_keys)
        new = client(load_keys(new_file), "node3")
        request_id = new.request_recovery(patient.address)
        wait_for(
            lambda: any(
                r.request_id == request_id for r in guardians[0].recovery_requests_to_approve()
            ),
            PATIENCE_S,
            "the request to reach node1",
        )
        for guardian in (guardians[0], guardians[2]):
            assert guardian.approve_recovery(request_id).ok

        restored: list[AccountKeys] = []

        def completed() -> bool:
            try:
                restored.append(new.complete_recovery(request_id))
            except TxFailed as refused:
                if refused.receipt.code != "recovery_not_ready":
                    raise
                return False
            return True

        wait_for(completed, PATIENCE_S, "the waiting period to pass and the recovery to complete")
        (keys,) = restored
        assert keys.address == patient.address
        save_keys(new_file, keys, overwrite=True)
        reader = client(load_keys(new_file), "node2")
        assert reader.read_record(record_id) == NOTE
        (request,) = reader.recovery_requests()
        assert request.status is RecoveryStatus.COMPLETED

        height = net.height("node0")
        net.wait_height(net.names, height)
        net.assert_agreement(net.names, height)
