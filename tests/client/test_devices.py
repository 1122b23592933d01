"""The SDK's devices and gateways, the same story on an in-process LocalChain and on
a node over HTTP: both backends must answer alike."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from medchain.app import (
    MS_PER_DAY,
    Bundle,
    DeviceAction,
    DeviceKind,
    DeviceOffence,
    DeviceState,
    RegisterDeviceArgs,
    Role,
    UnknownDevice,
    UnknownGateway,
    registration_message,
)
from medchain.client import (
    ChainBackend,
    HttpChain,
    InvalidLabel,
    LabelStatus,
    MedchainClient,
    NotAReader,
    UnknownBatch,
)
from medchain.crypto import AccountKeys, sha256
from medchain.node import TxFailed
from medchain.offchain import cid_for
from medchain.types import MedchainError
from tests.api.harness import HOSPITAL, FakeNode, admin, enlist, institution, make_chain, served

PARAMS = {"device_strikes_restrict": 2, "device_strikes_ban": 4, "device_restrict_blocks": 50}


@pytest.fixture(params=["local", "http"])
def backend(request: pytest.FixtureRequest) -> Iterator[tuple[ChainBackend, AccountKeys]]:
    validator = AccountKeys.generate()
    if request.param == "local":
        yield make_chain(validator, **PARAMS), validator
        return
    with (
        served(lambda: FakeNode(make_chain(validator, **PARAMS))) as running,
        HttpChain(running.url, timeout_s=10) as http,
    ):
        yield http, validator


def _person(chain: ChainBackend, funder: MedchainClient, role: Role | None) -> MedchainClient:
    client = MedchainClient(AccountKeys.generate(), chain)
    if role is None:
        funder.transfer(client.address, 1_000)
    else:
        enlist(client, role, f"a {role.value}")
    return client


def test_devices_story(backend: tuple[ChainBackend, AccountKeys]) -> None:
    chain, validator_keys = backend
    validator = MedchainClient(validator_keys, chain)
    patient = _person(chain, validator, Role.PATIENT)
    guardian = _person(chain, validator, Role.PATIENT)
    hospital = admin(chain)
    gateway = _person(chain, validator, None)
    device_keys = AccountKeys.generate()
    device = device_keys.address

    patient.add_guardian(guardian.address)
    assert patient.guardians_of() == (guardian.address,) == chain.guardians_of(patient.address)
    # the hospital registers it (so may lift a penalty on it later), sealed for the owner side
    hospital.register_device(device_keys, patient.address, DeviceKind.PULSE_OXIMETER, "finger")
    found = patient.device(device)
    assert (found.patient, found.kind) == (patient.address, DeviceKind.PULSE_OXIMETER)
    assert patient.device_label(found).text == "finger" == guardian.device_label(found).text
    assert hospital.device_label(found).status is LabelStatus.SEALED
    assert found.registered_by == hospital.address and found.key == device_keys.public_key
    assert patient.devices_of() == [found] == hospital.devices_of(patient.address)
    assert patient.device_state(device) is DeviceState.ACTIVE

    # the owner side restricts and lifts its own restriction
    patient.set_device_state(device, DeviceState.RESTRICTED, "battery swap")
    assert guardian.device_state(device) is DeviceState.RESTRICTED
    guardian.set_device_state(device, DeviceState.ACTIVE, "battery swapped")

    # gateway strikes restrict it; the owner cannot lift a penalty, its hospital can
    hospital.register_gateway(gateway.address, "ward 3")
    assert hospital.gateway(gateway.address).active
    gateway.report_device(device, DeviceOffence.REPLAY, b"evidence 1")
    with pytest.raises(TxFailed) as twice:
        gateway.report_device(device, DeviceOffence.REPLAY, b"evidence 1")
    assert twice.value.code == "duplicate_evidence"
    gateway.report_device(device, DeviceOffence.RATE_LIMIT, b"evidence 2")
    penalised = patient.device(device)
    assert patient.device_state(device) is DeviceState.RESTRICTED and penalised.strikes == 2
    assert penalised.restricted_until > chain.height
    with pytest.raises(TxFailed) as refused:
        patient.set_device_state(device, DeviceState.ACTIVE, "it is fine")
    assert refused.value.code == "not_authorised"
    hospital.set_device_state(device, DeviceState.ACTIVE, "checked", evidence=b"service log")
    assert patient.device(device).strikes == 0
    actions = [e.action for e in patient.device_audit(device)]
    assert actions == [DeviceAction.REGISTERED] + [DeviceAction.STATE_CHANGED] * 2 + [
        DeviceAction.STRIKE
    ] * 2 + [DeviceAction.STATE_CHANGED]
    assert chain.device_audit(device) == patient.device_audit(device)

    # batches: bundles are sorted (by patient, then day) for the caller; the id is the chain's
    theirs = AccountKeys.generate()
    guardian.register_device(theirs, guardian.address, DeviceKind.THERMOMETER, "ear")
    t0 = 19_844 * MS_PER_DAY
    bundles = sorted(
        [
            Bundle(patient.address, cid_for(b"1"), sha256(b"1"), 2, t0, t0 + 9, (device,)),
            Bundle(
                patient.address,
                cid_for(b"2"),
                sha256(b"2"),
                1,
                t0 + MS_PER_DAY,
                t0 + MS_PER_DAY,
                (device,),
            ),
            Bundle(guardian.address, cid_for(b"3"), sha256(b"3"), 2, t0, t0, (theirs.address,)),
        ],
        key=lambda b: (b.patient, b.day),
    )
    batch_id = gateway.commit_batch(b"\x01" * 32, 5, reversed(bundles))
    batch = patient.batch(batch_id)
    assert (batch.gateway, batch.root, batch.count) == (gateway.address, b"\x01" * 32, 5)
    assert list(batch.bundles) == bundles
    assert hospital.gateway(gateway.address).batch_count == 1
    vitals = patient.chain.vitals(patient.address, t0 + 9, t0 + MS_PER_DAY)
    assert [(v.batch_id, v.count, v.time_from_ms) for v in vitals] == [
        (batch_id, 2, t0),
        (batch_id, 1, t0 + MS_PER_DAY),
    ]
    assert patient.chain.vitals(patient.address, t0, t0 + 2 * MS_PER_DAY, theirs.address) == []
    theirs_only = guardian.chain.vitals(guardian.address, t0, t0, theirs.address)
    assert theirs_only[0].devices == (theirs.address,)

    # the patient shares their vitals, and stops
    ward = HOSPITAL.account.address  # the hospital's own account reads them
    patient.share_vitals(ward)
    assert patient.vitals_readers_of() == (ward,)
    assert chain.vitals_readers_of(patient.address) == (ward,)
    with pytest.raises(TxFailed) as twice_shared:
        patient.share_vitals(ward)
    assert twice_shared.value.code == "invalid_argument"
    patient.unshare_vitals(ward)
    assert hospital.vitals_readers_of(patient.address) == ()

    patient.remove_guardian(guardian.address)
    assert chain.guardians_of(patient.address) == ()
    with pytest.raises(TxFailed):
        guardian.set_device_state(device, DeviceState.BANNED, "no longer theirs")
    counts = chain.fleet_counts()  # as reading every device from the state gives
    everyone = chain.devices_of(patient.address) + chain.devices_of(guardian.address)
    in_force = Counter((d.kind, d.state_at(counts.height)) for d in everyone)
    assert {(c.kind, c.state): c.count for c in counts.devices} == in_force
    assert counts.by_kind() == {DeviceKind.PULSE_OXIMETER: 1, DeviceKind.THERMOMETER: 1}
    assert (counts.gateways_active, counts.gateways_revoked) == (1, 0)
    hospital.revoke_gateway(gateway.address)
    assert not hospital.gateway(gateway.address).active
    assert chain.gateways(0, 10) == (1, [hospital.gateway(gateway.address)])
    assert chain.fleet_counts().gateways_revoked == 1
    with pytest.raises(TxFailed) as revoked:
        gateway.report_device(device, DeviceOffence.UNSIGNED, b"evidence 3")
    assert revoked.value.code == "unknown_gateway"


def test_unknown_things(backend: tuple[ChainBackend, AccountKeys]) -> None:
    chain, validator_keys = backend
    client = MedchainClient(validator_keys, chain)
    nobody = AccountKeys.generate().address
    assert chain.device(nobody) is None and chain.device_audit(nobody) == []
    assert chain.gateway(nobody) is None and chain.batch(b"\x00" * 16) is None
    assert chain.devices_of(nobody) == [] and chain.guardians_of(nobody) == ()
    assert client.chain.vitals(nobody, 0, 1) == [] and chain.vitals_readers_of(nobody) == ()
    assert chain.patient_records(nobody) == []  # over HTTP: the API's 404, read as none
    with pytest.raises(UnknownDevice, match="register"):
        client.device(nobody)
    with pytest.raises(UnknownDevice):
        client.device_audit(nobody)
    with pytest.raises(UnknownGateway):
        client.gateway(nobody)
    with pytest.raises(UnknownBatch):
        client.batch(b"\x00" * 16)


def test_a_vitals_range_the_chain_refuses(backend: tuple[ChainBackend, AccountKeys]) -> None:
    """Both backends refuse a range over a year with the chain's code and advice."""
    chain, validator_keys = backend
    patient = _person(chain, MedchainClient(validator_keys, chain), Role.PATIENT)
    with pytest.raises(MedchainError, match="split it into shorter ranges") as refused:
        patient.chain.vitals(patient.address, 0, 400 * MS_PER_DAY)
    assert refused.value.code == "invalid_argument"


def test_a_device_key_proves_possession(backend: tuple[ChainBackend, AccountKeys]) -> None:
    """Registering someone's device needs its key: a proof by another key is refused."""
    chain, validator_keys = backend
    validator = MedchainClient(validator_keys, chain)
    patient = _person(chain, validator, Role.PATIENT)
    device_keys = AccountKeys.generate()
    impostor = AccountKeys.generate()
    proof = impostor.sign(registration_message(chain.chain_id, patient.address))
    args = RegisterDeviceArgs(device_keys.public_key, patient.address, DeviceKind.ECG, b"", proof)
    with pytest.raises(TxFailed) as refused:
        patient.send("devices.register", args)
    assert refused.value.code == "invalid_argument" and "proof" in refused.value.message
    assert chain.devices_of(patient.address) == []


def test_vitals_recipients_of_many_patients(backend: tuple[ChainBackend, AccountKeys]) -> None:
    chain, validator_keys = backend
    validator = MedchainClient(validator_keys, chain)
    patient = _person(chain, validator, Role.PATIENT)
    guardian = _person(chain, validator, Role.PATIENT)
    doctor = institution(chain, HOSPITAL)  # the hospital's account: not a patient
    alone = _person(chain, validator, Role.PATIENT)
    patient.add_guardian(guardian.address)
    patient.share_vitals(doctor.address)
    nobody = AccountKeys.generate().address
    found = chain.vitals_recipients([patient.address, nobody, doctor.address, alone.address])
    expected = {
        p.address: p.keys.encryption_public_key
        for p in sorted((patient, guardian, doctor), key=lambda p: p.address)
    }
    assert found[0] == expected and list(found[0]) == sorted(expected)
    assert found[1] is None and found[2] is None  # no patient, a hospital: not patients
    assert found[3] == {alone.address: alone.keys.encryption_public_key}
    assert chain.vitals_recipients([]) == []


def test_labels_follow_the_guardians(backend: tuple[ChainBackend, AccountKeys]) -> None:
    """A label opens for the patient and the guardians it was sealed for; relabelling
    seals it for the guardians of now, and a label in clear from an earlier medchain is
    sealed by relabelling it without a new text."""
    chain, validator_keys = backend
    validator = MedchainClient(validator_keys, chain)
    patient = _person(chain, validator, Role.PATIENT)
    first = _person(chain, validator, Role.PATIENT)
    later = _person(chain, validator, Role.DOCTOR)
    hospital = admin(chain)
    patient.add_guardian(first.address)
    device_keys = AccountKeys.generate()
    device = device_keys.address
    hospital.register_device(device_keys, patient.address, DeviceKind.ECG, "chest, under the scar")
    assert hospital.device_label(patient.device(device)).status is LabelStatus.SEALED

    patient.add_guardian(later.address)
    assert later.device_label(later.device(device)).status is LabelStatus.SEALED
    assert patient.reseal_device_labels() == [device]
    label = later.device_label(later.device(device))
    assert (label.status, label.text) == (LabelStatus.OPENED, "chest, under the scar")
    assert label.readers == tuple(sorted([patient.address, first.address, later.address]))
    assert patient.reseal_device_labels() == []  # already sealed for them all

    patient.remove_guardian(first.address)
    patient.relabel_device(device, "chest")
    assert first.device_label(first.device(device)).status is LabelStatus.SEALED
    assert later.device_label(later.device(device)).text == "chest"
    with pytest.raises(NotAReader):
        hospital.relabel_device(device)  # it cannot read the label to seal it again
    hospital.relabel_device(device, "")  # but it may remove it
    assert patient.device_label(patient.device(device)).status is LabelStatus.NONE
    with pytest.raises(InvalidLabel, match="at most 64 characters"):
        patient.relabel_device(device, "x" * 65)
