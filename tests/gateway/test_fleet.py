"""Enrolling a simulated fleet on a chain served over HTTP (an in-memory chain behind a
node's API): one sender's transactions are sent as blocks take them, what a full mempool
refused is sent again, failures on chain are found, and every device is checked to be
on chain."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from medchain.app import MAX_DEVICES_PER_PATIENT, RegisterArgs, Role, TransferArgs
from medchain.app import DeviceKind as ChainDeviceKind
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys, signed_tx
from medchain.gateway._fleet import _send_all, enrol_fleet, patient_keys
from medchain.types import MedchainError, Tx
from tests.api.harness import HOSPITAL, FakeNode, make_chain, served


@dataclass(frozen=True)
class FleetChain:
    chain: HttpChain
    validator: AccountKeys
    hospital: AccountKeys


@pytest.fixture
def fleet_chain() -> Iterator[FleetChain]:
    validator = AccountKeys.generate()
    with (
        served(lambda: FakeNode(make_chain(validator))) as node,
        HttpChain(node.url) as chain,
    ):
        yield FleetChain(chain, validator, HOSPITAL.admin)  # the founding hospital's admin


def test_send_all_tops_up_one_sender_and_checks_receipts(fleet_chain: FleetChain) -> None:
    chain, payer = fleet_chain.chain, fleet_chain.validator
    to = AccountKeys.generate().address

    def transfer(keys: AccountKeys, nonce: int, amount: int) -> Tx:
        return signed_tx(keys, chain.chain_id, nonce, "accounts.transfer", TransferArgs(to, amount))

    nonce = chain.account(payer.address).nonce
    many = [transfer(payer, nonce + i, 1) for i in range(300)]  # more than may be pending
    _send_all(chain, many, "transfer")
    assert chain.account(to).balance == 300
    _send_all(chain, many[:5], "transfer")  # already committed: nothing to do
    broke = AccountKeys.generate()  # admitted, and fails on chain
    with pytest.raises(MedchainError, match="a transfer transaction failed on chain"):
        _send_all(chain, [transfer(broke, 0, 5)], "transfer")
    with pytest.raises(MedchainError, match="the node refused a transfer transaction"):
        _send_all(chain, [transfer(payer, nonce, 2)], "transfer")  # a used nonce


def test_send_all_sends_again_what_a_full_mempool_refused() -> None:
    validator = AccountKeys.generate()
    with (
        served(lambda: FakeNode(make_chain(validator), auto_commit=False, max_pending=8)) as node,
        HttpChain(node.url) as chain,
    ):
        stop = threading.Event()

        def blocks() -> None:  # a block every 50 ms takes whatever is pending
            while not stop.wait(0.05):
                node.call(lambda n: n.commit())

        sealer = threading.Thread(target=blocks, daemon=True)
        sealer.start()
        try:
            patients = [AccountKeys.generate() for _ in range(30)]  # one transaction each
            txs = []
            for p in patients:
                profile = MedchainClient(p, chain)._seal_profile({"name": "a patient"})
                args = RegisterArgs(
                    Role.PATIENT, "", p.encryption_public_key, profile, p.ring_public_key
                )
                txs.append(signed_tx(p, chain.chain_id, 0, "registry.register", args))
            _send_all(chain, txs, "patient registration")
        finally:
            stop.set()
            sealer.join(5)
        assert all(chain.identity(p.address) is not None for p in patients)


def test_enrolment_checks_every_device_is_on_chain(fleet_chain: FleetChain) -> None:
    """One sender's earlier receipts are not read: a device registration failing on chain
    before the hospital's last one is found by looking the devices up."""
    chain, keys = fleet_chain.chain, fleet_chain.hospital
    hospital = MedchainClient(keys, chain)
    (first,) = enrol_fleet(chain, keys, 1, 0, seed=9)
    full = MedchainClient(patient_keys(9, 1), chain)
    full.register(Role.PATIENT, "simulated patient 1")
    for _ in range(MAX_DEVICES_PER_PATIENT):
        hospital.register_device(
            AccountKeys.generate(), full.address, ChainDeviceKind.THERMOMETER, "t"
        )
    # devices 0 and 1 are patient 0's (0 is `first`, on chain), 2 and 3 the full patient's:
    # device 1's registration goes first (the node dry-runs it: it passes), 2's fails on chain
    with pytest.raises(MedchainError, match="a patient has at most 64 devices"):
        enrol_fleet(chain, keys, 4, 0, seed=9, per_patient=2)
    assert chain.device(first.keys.address) is not None
    assert len(chain.devices_of(patient_keys(9, 0).address)) == 2
