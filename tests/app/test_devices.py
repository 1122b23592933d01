"""The devices contract: registration, guardians, states, penalties, gateways, batches
(what the state keeps of them) and the readers a patient shares their vitals with.
The per-patient vitals index is each node's: tests/node/test_vitals_index.py."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.app import (
    MAX_BATCH_BUNDLES,
    MAX_BATCH_READINGS,
    MAX_TIME_MS,
    MAX_VITALS_READERS,
    MS_PER_DAY,
    AddProxyArgs,
    ApproveArgs,
    Batch,
    BatchHeader,
    Bundle,
    CommitBatchArgs,
    CredentialActionArgs,
    CredentialRole,
    DeviceAction,
    DeviceKind,
    DeviceOffence,
    DeviceState,
    Ledger,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposeArgs,
    ProxyRelation,
    ProxyScope,
    RegisterDeviceArgs,
    RegisterGatewayArgs,
    RelabelArgs,
    RemoveProxyArgs,
    ReportArgs,
    RevokeGatewayArgs,
    Role,
    SetStateArgs,
    VitalsReaderArgs,
    committed_batch,
    device_audit,
    devices_of,
    get_batch_header,
    get_device,
    get_gateway,
    guardians_of,
    new_batch_id,
    registration_message,
    restriction_lapses,
    vitals_readers_of,
)
from medchain.app import _devices as devices_module
from medchain.crypto import AccountKeys, merkle_root, sha256
from medchain.types import Receipt, encode

from .conftest import CHAIN_ID, World, fake_blob, fake_label, make_org, make_world

RESTRICT_BLOCKS = 100  # ChainParams' default device_restrict_blocks


def _register_args(
    world: World, device: AccountKeys, patient: bytes, proof_for: bytes | None = None
) -> RegisterDeviceArgs:
    """Registration of `device` for `patient`, its label sealed (in shape) for the
    patient and their guardians."""
    proof = device.sign(registration_message(CHAIN_ID, proof_for or patient))
    label = fake_label(patient, *guardians_of(world.ledger.state, patient, world.now_ms()))
    return RegisterDeviceArgs(device.public_key, patient, DeviceKind.PULSE_OXIMETER, label, proof)


def _register(world: World, sender: AccountKeys, patient: AccountKeys) -> AccountKeys:
    device = AccountKeys.generate()
    world.ok(sender, "devices.register", _register_args(world, device, patient.address))
    return device


@pytest.fixture
def hospital(world: World) -> AccountKeys:
    """An admin of the founding organisation: it registers devices and gateways."""
    return world.orgs[0].admin


@pytest.fixture
def gateway(world: World, hospital: AccountKeys) -> AccountKeys:
    keys = AccountKeys.generate()
    world.ok(hospital, "devices.register_gateway", RegisterGatewayArgs(keys.address, "ward 3 edge"))
    return keys


def _add_guardian(
    world: World, patient: AccountKeys, guardian: AccountKeys, expires_ms: int = 0
) -> None:
    """Make `guardian` a `devices` proxy of the patient: what a guardian is."""
    scopes = (ProxyScope.DEVICES,)
    world.ok(
        patient,
        "proxies.add",
        AddProxyArgs(guardian.address, ProxyRelation.CARER, scopes, expires_ms),
    )


def _report(world: World, gateway: AccountKeys, device: bytes, tag: bytes) -> Receipt:
    return world.call(
        gateway, "devices.report", ReportArgs(device, DeviceOffence.RATE_LIMIT, b"log " + tag)
    )


def _state(world: World, device: AccountKeys) -> DeviceState:
    found = get_device(world.ledger.state, device.address)
    assert found is not None
    return found.state_at(world.height + 1)


# -- registration -------------------------------------------------------------------


def test_patient_registers_own_device(world: World, patient: AccountKeys) -> None:
    device = _register(world, patient, patient)
    found = get_device(world.ledger.state, device.address)
    assert found is not None
    assert found.key == device.public_key and found.patient == patient.address
    assert found.kind is DeviceKind.PULSE_OXIMETER and found.label == fake_label(patient.address)
    assert found.state is DeviceState.ACTIVE and found.strikes == 0
    assert found.registered_by == patient.address and found.height == world.height
    assert devices_of(world.ledger.state, patient.address) == [found]


def test_hospital_and_guardian_may_register(
    world: World, patient: AccountKeys, hospital: AccountKeys, doctor: AccountKeys
) -> None:
    by_hospital = _register(world, hospital, patient)
    by_clinician = _register(world, doctor, patient)
    carer = AccountKeys.generate()
    world.register(carer, Role.PATIENT)
    before = world.entries_but_accounts()
    receipt = world.call(
        carer, "devices.register", _register_args(world, AccountKeys.generate(), patient.address)
    )
    assert receipt.code == "not_authorised"
    assert "credentialed clinician of a member organisation" in receipt.message
    assert world.entries_but_accounts() == before
    _add_guardian(world, patient, carer)
    assert guardians_of(world.ledger.state, patient.address, world.now_ms()) == (carer.address,)
    by_guardian = _register(world, carer, patient)
    listed = devices_of(world.ledger.state, patient.address)
    assert [d.device for d in listed] == [
        by_hospital.address,
        by_clinician.address,
        by_guardian.address,
    ]
    assert [d.registrar_org for d in listed] == ["st-mary", "st-mary", ""]
    world.ok(patient, "proxies.remove", RemoveProxyArgs(carer.address))
    receipt = world.call(
        carer, "devices.register", _register_args(world, AccountKeys.generate(), patient.address)
    )
    assert receipt.code == "not_authorised"


def test_registration_refusals(world: World, patient: AccountKeys, doctor: AccountKeys) -> None:
    device = _register(world, patient, patient)
    again = world.call(patient, "devices.register", _register_args(world, device, patient.address))
    assert again.code == "already_registered"
    unknown = AccountKeys.generate()
    receipt = world.call(
        unknown, "devices.register", _register_args(world, AccountKeys.generate(), unknown.address)
    )
    assert receipt.code == "not_registered"  # not a registered patient
    hospital_account = world.orgs[0].account.address
    receipt = world.call(
        patient,
        "devices.register",
        _register_args(world, AccountKeys.generate(), hospital_account),
    )
    assert receipt.code == "wrong_role"  # devices are bound to patients
    stranger = AccountKeys.generate()
    receipt = world.call(
        stranger, "devices.register", _register_args(world, AccountKeys.generate(), patient.address)
    )
    assert receipt.code == "not_authorised"


def test_registration_needs_the_devices_own_proof(world: World, patient: AccountKeys) -> None:
    other = AccountKeys.generate()
    world.register(other, Role.PATIENT)
    # a proof made for another patient does not bind the device to this one
    stolen = _register_args(world, AccountKeys.generate(), patient.address, proof_for=other.address)
    assert world.call(patient, "devices.register", stolen).code == "invalid_argument"
    good = _register_args(world, AccountKeys.generate(), patient.address)
    for key in (b"\x00" * 32, b"\x01" * 31, b""):
        bad = RegisterDeviceArgs(key, patient.address, good.kind, good.label, good.proof)
        assert world.call(patient, "devices.register", bad).code == "invalid_argument"


def test_a_label_is_sealed_for_the_patient_and_guardians_or_refused(
    world: World, patient: AccountKeys, doctor: AccountKeys, hospital: AccountKeys
) -> None:
    _add_guardian(world, patient, doctor)
    device = AccountKeys.generate()
    good = _register_args(world, device, patient.address)

    def register(label: bytes) -> Receipt:
        args = RegisterDeviceArgs(good.device_key, patient.address, good.kind, label, good.proof)
        return world.call(hospital, "devices.register", args)

    assert register(b"insulin pump, Jane").code == "label_not_sealed"
    assert register(fake_label(patient.address)).code == "key_wrap_mismatch"  # guardian left out
    with_hospital = fake_label(patient.address, doctor.address, hospital.address)
    assert register(with_hospital).code == "key_wrap_mismatch"  # the sender is no reader
    assert get_device(world.ledger.state, device.address) is None
    assert register(b"").ok  # no label at all
    found = get_device(world.ledger.state, device.address)
    assert found is not None and found.label == b""


def test_relabel(
    world: World, patient: AccountKeys, doctor: AccountKeys, hospital: AccountKeys
) -> None:
    device = _register(world, hospital, patient)
    _add_guardian(world, patient, doctor)
    stale = RelabelArgs(device.address, fake_label(patient.address))
    assert world.call(patient, "devices.relabel", stale).code == "key_wrap_mismatch"
    resealed = fake_label(patient.address, doctor.address, blocks=2)
    world.ok(doctor, "devices.relabel", RelabelArgs(device.address, resealed))  # a guardian
    found = get_device(world.ledger.state, device.address)
    assert found is not None and found.label == resealed
    last = device_audit(world.ledger.state, found)[-1]
    assert (last.action, last.actor, last.seq) == (DeviceAction.RELABELLED, doctor.address, 1)
    world.ok(hospital, "devices.relabel", RelabelArgs(device.address, b""))  # a hospital
    found = get_device(world.ledger.state, device.address)
    assert found is not None and found.label == b"" and found.audit_count == 3
    stranger = AccountKeys.generate()
    world.register(stranger, Role.PATIENT)
    refused = world.call(stranger, "devices.relabel", RelabelArgs(device.address, resealed))
    assert refused.code == "not_authorised"
    in_clear = RelabelArgs(device.address, b"left wrist")
    assert world.call(patient, "devices.relabel", in_clear).code == "label_not_sealed"
    unknown = RelabelArgs(AccountKeys.generate().address, resealed)
    assert world.call(patient, "devices.relabel", unknown).code == "unknown_device"


def test_a_guardian_is_a_devices_proxy_until_it_expires(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    device = _register(world, patient, patient)
    expires = world.now_ms() + 3
    _add_guardian(world, patient, doctor, expires_ms=expires)
    restrict = SetStateArgs(device.address, DeviceState.RESTRICTED, "battery failing")
    world.ok(doctor, "devices.set_state", restrict)
    while world.now_ms() < expires:
        world.empty_blocks(1)
    assert guardians_of(world.ledger.state, patient.address, world.now_ms()) == ()
    lift = SetStateArgs(device.address, DeviceState.ACTIVE, "new battery")
    assert world.call(doctor, "devices.set_state", lift).code == "not_authorised"
    relabel = RelabelArgs(device.address, fake_label(patient.address, doctor.address))
    assert world.call(patient, "devices.relabel", relabel).code == "key_wrap_mismatch"
    world.ok(patient, "devices.relabel", RelabelArgs(device.address, fake_label(patient.address)))


def test_a_devices_proxy_acts_on_the_audit_trail_for_the_patient(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    device = _register(world, patient, patient)
    _add_guardian(world, patient, doctor)
    restrict = SetStateArgs(device.address, DeviceState.RESTRICTED, "battery failing")
    receipt = world.ok(doctor, "devices.set_state", restrict)
    world.ok(patient, "devices.set_state", SetStateArgs(device.address, DeviceState.ACTIVE, "ok"))
    found = get_device(world.ledger.state, device.address)
    assert found is not None
    *_, by_proxy, by_patient = device_audit(world.ledger.state, found)
    assert (by_proxy.actor, by_proxy.on_behalf) == (doctor.address, patient.address)
    assert (by_patient.actor, by_patient.on_behalf) == (patient.address, b"")
    (event,) = receipt.events
    shown = {a.key: a.value for a in event.attributes}
    assert shown["proxy"] == shown["actor"] != shown["patient"]


def test_a_proxy_without_the_devices_scope_is_no_guardian(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    device = _register(world, patient, patient)
    args = AddProxyArgs(doctor.address, ProxyRelation.CARER, (ProxyScope.READ, ProxyScope.GRANT), 0)
    world.ok(patient, "proxies.add", args)
    ban = SetStateArgs(device.address, DeviceState.BANNED, "lost")
    assert world.call(doctor, "devices.set_state", ban).code == "not_authorised"


# -- states -------------------------------------------------------------------------


def test_owner_restricts_and_reactivates(world: World, patient: AccountKeys) -> None:
    device = _register(world, patient, patient)
    world.ok(
        patient,
        "devices.set_state",
        SetStateArgs(device.address, DeviceState.RESTRICTED, "battery failing", b"photo"),
    )
    found = get_device(world.ledger.state, device.address)
    assert found is not None and found.state is DeviceState.RESTRICTED
    assert found.reason == "battery failing" and found.evidence_hash == sha256(b"photo")
    same = SetStateArgs(device.address, DeviceState.RESTRICTED, "again")
    assert world.call(patient, "devices.set_state", same).code == "invalid_argument"
    world.ok(
        patient,
        "devices.set_state",
        SetStateArgs(device.address, DeviceState.ACTIVE, "new battery"),
    )
    assert _state(world, device) is DeviceState.ACTIVE


def test_others_may_not_change_state(
    world: World, patient: AccountKeys, doctor: AccountKeys, gateway: AccountKeys
) -> None:
    device = _register(world, patient, patient)
    ban = SetStateArgs(device.address, DeviceState.BANNED, "I do not like it")
    assert world.call(doctor, "devices.set_state", ban).code == "not_authorised"
    assert world.call(gateway, "devices.set_state", ban).code == "not_authorised"
    unknown = SetStateArgs(AccountKeys.generate().address, DeviceState.BANNED, "x")
    assert world.call(patient, "devices.set_state", unknown).code == "unknown_device"
    no_reason = SetStateArgs(device.address, DeviceState.BANNED, "")
    assert world.call(patient, "devices.set_state", no_reason).code == "invalid_argument"


def test_a_ban_is_final_for_the_owner_but_a_hospital_lifts_it(
    world: World, patient: AccountKeys, hospital: AccountKeys
) -> None:
    carer = AccountKeys.generate()
    world.register(carer, Role.PATIENT)
    _add_guardian(world, patient, carer)
    device = _register(world, hospital, patient)
    world.ok(carer, "devices.set_state", SetStateArgs(device.address, DeviceState.BANNED, "lost"))
    lift = SetStateArgs(device.address, DeviceState.ACTIVE, "found it")
    assert world.call(patient, "devices.set_state", lift).code == "device_banned"
    assert world.call(carer, "devices.set_state", lift).code == "device_banned"
    world.ok(hospital, "devices.set_state", lift)
    assert _state(world, device) is DeviceState.ACTIVE


def test_only_the_registrar_organisation_manages_a_device(
    world: World, patient: AccountKeys, hospital: AccountKeys, doctor: AccountKeys
) -> None:
    """Another member organisation's admin or clinician may not ban it; the registrar's
    clinician may, while credentialed."""
    clinic = make_org("north-clinic", "clinic")
    world.admit(clinic)
    their_doctor = world.staff(CredentialRole.DOCTOR, org=clinic)
    device = _register(world, hospital, patient)
    ban = SetStateArgs(device.address, DeviceState.BANNED, "recall")
    for outsider in (clinic.admin, their_doctor):
        before = world.entries_but_accounts()
        receipt = world.call(outsider, "devices.set_state", ban)
        assert receipt.code == "not_authorised"
        assert world.entries_but_accounts() == before
    world.ok(doctor, "devices.set_state", ban)
    assert _state(world, device) is DeviceState.BANNED
    world.ok(hospital, "credentials.suspend", CredentialActionArgs(doctor.address, "leave"))
    lift = SetStateArgs(device.address, DeviceState.ACTIVE, "cleared")
    assert world.call(doctor, "devices.set_state", lift).code == "not_authorised"
    world.ok(hospital, "devices.set_state", lift)


def test_no_organisation_manages_a_device_the_patient_registered(
    world: World, patient: AccountKeys, hospital: AccountKeys
) -> None:
    device = _register(world, patient, patient)
    ban = SetStateArgs(device.address, DeviceState.BANNED, "junk")
    before = world.entries_but_accounts()
    assert world.call(hospital, "devices.set_state", ban).code == "not_authorised"
    assert world.entries_but_accounts() == before


def test_owner_cannot_lift_a_hospitals_restriction(
    world: World, patient: AccountKeys, hospital: AccountKeys
) -> None:
    device = _register(world, hospital, patient)
    world.ok(
        hospital,
        "devices.set_state",
        SetStateArgs(device.address, DeviceState.RESTRICTED, "recall"),
    )
    lift = SetStateArgs(device.address, DeviceState.ACTIVE, "works for me")
    assert world.call(patient, "devices.set_state", lift).code == "not_authorised"
    # but may make it stricter
    world.ok(patient, "devices.set_state", SetStateArgs(device.address, DeviceState.BANNED, "bin"))


# -- penalties ----------------------------------------------------------------------


def test_strikes_restrict_then_expire_then_ban(
    world: World, patient: AccountKeys, gateway: AccountKeys
) -> None:
    device = _register(world, patient, patient)
    for n in range(2):
        assert _report(world, gateway, device.address, bytes([n])).ok
        assert _state(world, device) is DeviceState.ACTIVE
    assert _report(world, gateway, device.address, b"3").ok
    found = get_device(world.ledger.state, device.address)
    assert found is not None and found.strikes == 3
    assert found.state is DeviceState.RESTRICTED
    assert found.restricted_until == world.height + RESTRICT_BLOCKS
    assert found.reason == "rate_limit"
    # the owner cannot lift a penalty
    lift = SetStateArgs(device.address, DeviceState.ACTIVE, "please")
    assert world.call(patient, "devices.set_state", lift).code == "not_authorised"
    # the restriction lapses by itself, with no transaction
    assert found.state_at(found.restricted_until) is DeviceState.RESTRICTED
    assert found.state_at(found.restricted_until + 1) is DeviceState.ACTIVE
    world.empty_blocks(found.restricted_until - world.height)
    assert _state(world, device) is DeviceState.ACTIVE
    # a strike after the lapse restricts again; one while restricted bans
    assert _report(world, gateway, device.address, b"4").ok
    assert _state(world, device) is DeviceState.RESTRICTED
    assert _report(world, gateway, device.address, b"5").ok
    assert _state(world, device) is DeviceState.BANNED
    assert _report(world, gateway, device.address, b"6").code == "device_banned"
    # the trail shows the lapse: registered, 2 strikes, restricted (lapsed), restricted, banned
    banned = get_device(world.ledger.state, device.address)
    assert banned is not None
    trail = device_audit(world.ledger.state, banned)
    assert restriction_lapses(trail, world.height) == [0, 0, 0, found.restricted_until + 1, 0, 0]
    again = trail[4].restricted_until
    assert restriction_lapses(trail[:5], again)[4] == 0  # still in force at its last height
    assert restriction_lapses(trail[:5], again + 1)[4] == again + 1


def test_a_hospital_lifting_a_penalty_clears_strikes(
    world: World, patient: AccountKeys, hospital: AccountKeys, gateway: AccountKeys
) -> None:
    device = _register(world, hospital, patient)
    for n in range(3):
        assert _report(world, gateway, device.address, bytes([n])).ok
    # a hospital lifts the restriction: the strikes start again
    world.ok(
        hospital,
        "devices.set_state",
        SetStateArgs(device.address, DeviceState.ACTIVE, "firmware fixed"),
    )
    found = get_device(world.ledger.state, device.address)
    assert found is not None and found.strikes == 0


def test_ban_threshold_without_restriction(
    patient_world: tuple[World, AccountKeys, AccountKeys],
) -> None:
    world, patient, gateway = patient_world
    device = _register(world, patient, patient)
    for n in range(3):
        assert _report(world, gateway, device.address, bytes([n])).ok
    assert _state(world, device) is DeviceState.BANNED  # ban threshold 3 == restrict threshold


@pytest.fixture
def patient_world(validator: AccountKeys) -> tuple[World, AccountKeys, AccountKeys]:
    """A chain whose devices are banned at 3 strikes."""
    from medchain.types import ChainParams

    params = ChainParams(device_strikes_restrict=3, device_strikes_ban=3)
    world = make_world((make_org("st-mary"),), validator, AccountKeys.generate(), params)
    patient, gateway = AccountKeys.generate(), AccountKeys.generate()
    hospital = world.orgs[0].admin
    world.register(patient, Role.PATIENT)
    world.ok(hospital, "devices.register_gateway", RegisterGatewayArgs(gateway.address, "edge"))
    return world, patient, gateway


def test_duplicate_evidence_is_refused(
    world: World, patient: AccountKeys, gateway: AccountKeys
) -> None:
    first, second = _register(world, patient, patient), _register(world, patient, patient)
    assert _report(world, gateway, first.address, b"same").ok
    assert _report(world, gateway, first.address, b"same").code == "duplicate_evidence"
    assert _report(world, gateway, second.address, b"same").code == "duplicate_evidence"
    empty = ReportArgs(first.address, DeviceOffence.REPLAY, b"")
    assert world.call(gateway, "devices.report", empty).code == "invalid_argument"


def test_only_active_gateways_report(
    world: World, patient: AccountKeys, hospital: AccountKeys, gateway: AccountKeys
) -> None:
    device = _register(world, patient, patient)
    assert _report(world, hospital, device.address, b"x").code == "unknown_gateway"
    another = make_org("another-hospital")
    world.admit(another)
    other = another.admin
    revoke = RevokeGatewayArgs(gateway.address)
    assert world.call(other, "devices.revoke_gateway", revoke).code == "not_authorised"
    world.ok(hospital, "devices.revoke_gateway", revoke)
    assert _report(world, gateway, device.address, b"y").code == "unknown_gateway"
    found = get_gateway(world.ledger.state, gateway.address)
    assert found is not None and not found.active


def test_gateway_registration_rules(
    world: World,
    patient: AccountKeys,
    doctor: AccountKeys,
    hospital: AccountKeys,
    gateway: AccountKeys,
) -> None:
    found = get_gateway(world.ledger.state, gateway.address)
    assert found is not None and found.registered_by == hospital.address and found.active
    again = RegisterGatewayArgs(gateway.address, "again")
    assert world.call(hospital, "devices.register_gateway", again).code == "already_registered"
    fresh = RegisterGatewayArgs(AccountKeys.generate().address, "edge")
    assert world.call(doctor, "devices.register_gateway", fresh).code == "not_an_admin"
    assert world.call(patient, "devices.register_gateway", fresh).code == "not_an_admin"
    short = RegisterGatewayArgs(b"\x01" * 19, "edge")
    assert world.call(hospital, "devices.register_gateway", short).code == "invalid_argument"


# -- batches ------------------------------------------------------------------------

T0 = 19_844 * MS_PER_DAY
"""2024-05-01T00:00:00Z"""


def _bundle(
    patient: AccountKeys,
    devices: list[AccountKeys],
    count: int = 1,
    time_from: int = T0,
    time_to: int | None = None,
) -> Bundle:
    cid, digest = fake_blob(b"bundle " + patient.address + time_from.to_bytes(8, "big"))
    return Bundle(
        patient.address,
        cid,
        digest,
        count,
        time_from,
        time_from if time_to is None else time_to,
        tuple(sorted(d.address for d in devices)),
    )


def _commit(world: World, gateway: AccountKeys, *bundles: Bundle) -> bytes:
    """Commit `bundles` in a batch of their readings; returns the batch id."""
    nonce = world.nonces.get(gateway.address, 0)
    root = sha256(b"root" + nonce.to_bytes(8, "big"))
    count = sum(b.count for b in bundles)
    world.ok(gateway, "devices.commit_batch", CommitBatchArgs(root, count, bundles))
    return new_batch_id(gateway.address, nonce)


def test_gateway_commits_a_batch(
    world: World, patient: AccountKeys, hospital: AccountKeys, gateway: AccountKeys
) -> None:
    other = AccountKeys.generate()
    world.register(other, Role.PATIENT)
    mine, theirs = _register(world, patient, patient), _register(world, hospital, other)
    readings = [sha256(bytes([i])) for i in range(5)]
    root = merkle_root(readings)
    bundles = tuple(
        sorted(
            [_bundle(patient, [mine], 3, T0 + 10, T0 + 20), _bundle(other, [theirs], 2, T0 + 5)],
            key=lambda b: b.patient,
        )
    )
    nonce = world.nonces.get(gateway.address, 0)
    tx = world.tx(gateway, "devices.commit_batch", CommitBatchArgs(root, 5, bundles))
    outcome = world.ledger.execute_block(world.context(), [tx])
    world.height, world.nonces[gateway.address] = world.height + 1, nonce + 1
    (receipt,) = outcome.receipts
    assert receipt.ok, receipt.message
    batch_id = new_batch_id(gateway.address, nonce)
    header = get_batch_header(world.ledger.state, batch_id)
    assert header == BatchHeader(batch_id, gateway.address, root, 5, 2, world.height, receipt.tx_id)
    assert receipt.events[0].kind == "device.batch_committed"
    assert receipt.events[0].get("bundles") == "2"
    found = get_gateway(world.ledger.state, gateway.address)
    assert found is not None and found.batch_count == 1
    # of the devices contract, the state keeps the header, the root and the gateway's
    # count: nothing per bundle
    assert sorted(k for k in outcome.changes if k.startswith(b"dev/")) == sorted(
        [b"dev/b/" + batch_id, b"dev/r/" + root, b"dev/gw/" + gateway.address]
    )
    # the bundles are in the transaction, for each node's index
    assert committed_batch(tx, world.height) == Batch(
        batch_id, gateway.address, root, 5, bundles, world.height, receipt.tx_id
    )
    mine_only = tuple(b for b in bundles if b.patient == patient.address)
    again = world.call(gateway, "devices.commit_batch", CommitBatchArgs(root, 3, mine_only))
    assert again.code == "duplicate_batch"


def test_a_batch_an_earlier_medchain_stored_whole_reads_as_its_header(world: World) -> None:
    bundle = Bundle(b"\x01" * 20, "cid", b"\x02" * 32, 4, T0, T0 + 1, (b"\x03" * 20,))
    batch_id = b"\x04" * 16
    old = Batch(batch_id, b"\x05" * 20, b"\x06" * 32, 9, (bundle, bundle), 7, b"\x08" * 32)
    ledger = Ledger(world.ledger.genesis, {b"dev/b/" + batch_id: encode(old)})
    assert get_batch_header(ledger.state, batch_id) == BatchHeader(
        batch_id, old.gateway, old.root, 9, 2, 7, old.tx_id
    )
    assert get_batch_header(ledger.state, b"\x09" * 16) is None


def test_batch_bounds(
    world: World, patient: AccountKeys, hospital: AccountKeys, gateway: AccountKeys
) -> None:
    root = b"\x01" * 32
    device = _register(world, patient, patient)
    one = (_bundle(patient, [device]),)

    def code(sender: AccountKeys, args: CommitBatchArgs) -> str:
        return world.call(sender, "devices.commit_batch", args).code

    assert code(hospital, CommitBatchArgs(root, 1, one)) == "unknown_gateway"
    assert code(gateway, CommitBatchArgs(b"\x01" * 31, 1, one)) == "invalid_argument"
    assert code(gateway, CommitBatchArgs(root, 0, one)) == "invalid_argument"
    too_many = CommitBatchArgs(root, MAX_BATCH_READINGS + 1, one)
    assert code(gateway, too_many) == "invalid_argument"
    assert code(gateway, CommitBatchArgs(root, 1, ())) == "invalid_argument"
    many = tuple(
        Bundle(i.to_bytes(20, "big"), "x", b"", 1, T0, T0, (device.address,))
        for i in range(MAX_BATCH_BUNDLES + 1)
    )
    assert code(gateway, CommitBatchArgs(root, MAX_BATCH_READINGS, many)) == "invalid_argument"
    other = AccountKeys.generate()
    world.register(other, Role.PATIENT)
    theirs = _register(world, other, other)
    two = tuple(
        sorted([_bundle(patient, [device]), _bundle(other, [theirs])], key=lambda b: b.patient)
    )
    assert code(gateway, CommitBatchArgs(root, 1, two)) == "invalid_argument"  # > one per reading
    assert code(gateway, CommitBatchArgs(root, 2, tuple(reversed(two)))) == "invalid_argument"
    bad_cid = (Bundle(patient.address, one[0].cid, b"\x00" * 32, 1, T0, T0, (device.address,)),)
    assert code(gateway, CommitBatchArgs(root, 1, bad_cid)) == "invalid_argument"
    nobody = (Bundle(b"\x09" * 20, one[0].cid, one[0].ciphertext_hash, 1, T0, T0, ()),)
    assert code(gateway, CommitBatchArgs(root, 1, nobody)) == "not_registered"
    assert world.call(gateway, "devices.commit_batch", CommitBatchArgs(root, 2, two)).ok


def test_bundles_are_one_per_patient_and_day_with_their_own_devices(
    world: World, patient: AccountKeys, hospital: AccountKeys, gateway: AccountKeys
) -> None:
    a, b = _register(world, patient, patient), _register(world, hospital, patient)
    stranger = AccountKeys.generate()
    world.register(stranger, Role.PATIENT)
    theirs = _register(world, stranger, stranger)
    root = b"\x02" * 32

    def refused(*bundles: Bundle, count: int | None = None) -> str:
        total = sum(x.count for x in bundles) if count is None else count
        receipt = world.call(gateway, "devices.commit_batch", CommitBatchArgs(root, total, bundles))
        assert receipt.code == "invalid_argument", receipt.code
        return receipt.message

    day2 = T0 + MS_PER_DAY
    assert "sorted by patient address, then day" in refused(
        _bundle(patient, [a], time_from=day2), _bundle(patient, [a], time_from=T0)
    )
    assert "one per patient and UTC day" in refused(
        _bundle(patient, [a], time_from=T0), _bundle(patient, [b], time_from=T0 + 1)
    )
    assert "split its readings at midnight UTC" in refused(
        _bundle(patient, [a], 2, T0 + MS_PER_DAY - 1, day2)
    )
    assert "first <= last" in refused(_bundle(patient, [a], 2, T0 + 5, T0 + 4))
    assert "first <= last" in refused(_bundle(patient, [a], 2, MAX_TIME_MS, MAX_TIME_MS + 1))
    assert "holds no readings" in refused(_bundle(patient, [a], 0), count=1)
    assert "every reading of the batch is in exactly one bundle" in refused(
        _bundle(patient, [a], 2), count=3
    )
    assert "name the 1 to" in refused(_bundle(patient, []))
    assert "name the 1 to" in refused(_bundle(patient, [a, b], count=1))  # more than readings
    pair = _bundle(patient, [a, b], 2)
    unsorted = dataclasses.replace(pair, devices=tuple(reversed(pair.devices)))
    assert "unique and sorted" in refused(unsorted)
    assert "unique and sorted" in refused(dataclasses.replace(pair, devices=(a.address,) * 2))
    message = refused(_bundle(patient, [a, theirs], 2))
    assert f"not registered to {patient.address_text}" in message and "devices.register" in message
    assert "not registered to" in refused(_bundle(patient, [AccountKeys.generate()]))
    too_many = [AccountKeys.generate() for _ in range(devices_module.MAX_DEVICES_PER_PATIENT + 1)]
    assert "name the 1 to 64" in refused(
        _bundle(patient, too_many, devices_module.MAX_DEVICES_PER_PATIENT + 1)
    )
    # the same patient on two days, sorted by day, is one batch
    batch_id = _commit(
        world, gateway, _bundle(patient, [a, b], 2, T0, T0 + 9), _bundle(patient, [b], 1, day2)
    )
    header = get_batch_header(world.ledger.state, batch_id)
    assert header is not None and (header.count, header.bundle_count) == (3, 2)


# -- vitals readers -------------------------------------------------------------------


def test_patient_shares_vitals(
    world: World, patient: AccountKeys, doctor: AccountKeys, doctor2: AccountKeys
) -> None:
    def share(sender: AccountKeys, reader: bytes, method: str = "share_vitals") -> Receipt:
        return world.call(sender, f"devices.{method}", VitalsReaderArgs(reader))

    receipt = share(patient, doctor.address)
    assert receipt.ok and receipt.events[0].kind == "device.vitals_shared"
    assert receipt.events[0].get("reader") == doctor.address_text
    assert receipt.events[0].get("patient") == patient.address_text
    assert share(patient, doctor2.address).ok
    readers = vitals_readers_of(world.ledger.state, patient.address)
    assert readers == tuple(sorted([doctor.address, doctor2.address]))
    again = share(patient, doctor.address)
    assert again.code == "invalid_argument" and "already reads" in again.message
    assert share(patient, patient.address).code == "invalid_argument"
    assert share(patient, AccountKeys.generate().address).code == "not_registered"
    assert share(patient, b"\x01" * 19).code == "invalid_argument"
    hospital_account = world.orgs[0].account
    assert share(hospital_account, patient.address).code == "wrong_role"  # only patients share
    keyless = AccountKeys.generate()
    world.register(keyless, Role.VALIDATOR, "v")
    refused = share(patient, keyless.address)
    assert refused.code == "invalid_argument" and "without an encryption key" in refused.message

    receipt = share(patient, doctor.address, "unshare_vitals")
    assert receipt.ok and receipt.events[0].kind == "device.vitals_unshared"
    assert vitals_readers_of(world.ledger.state, patient.address) == (doctor2.address,)
    gone = share(patient, doctor.address, "unshare_vitals")
    assert gone.code == "invalid_argument" and "does not read" in gone.message
    assert share(patient, doctor2.address, "unshare_vitals").ok
    assert vitals_readers_of(world.ledger.state, patient.address) == ()


def test_at_most_so_many_vitals_readers(world: World, patient: AccountKeys) -> None:
    for _ in range(MAX_VITALS_READERS):
        reader = AccountKeys.generate()
        world.register(reader, Role.DOCTOR, "Dr.")
        world.ok(patient, "devices.share_vitals", VitalsReaderArgs(reader.address))
    one_more = AccountKeys.generate()
    world.register(one_more, Role.DOCTOR, "Dr.")
    receipt = world.call(patient, "devices.share_vitals", VitalsReaderArgs(one_more.address))
    assert receipt.code == "invalid_argument" and "unshare_vitals" in receipt.message
    assert len(vitals_readers_of(world.ledger.state, patient.address)) == MAX_VITALS_READERS


# -- audit and determinism ----------------------------------------------------------


def test_audit_trail_records_every_change_in_order(
    world: World, patient: AccountKeys, hospital: AccountKeys, gateway: AccountKeys
) -> None:
    device = _register(world, hospital, patient)
    world.ok(
        patient,
        "devices.set_state",
        SetStateArgs(device.address, DeviceState.RESTRICTED, "odd", b"e1"),
    )
    world.ok(patient, "devices.set_state", SetStateArgs(device.address, DeviceState.ACTIVE, "fine"))
    _report(world, gateway, device.address, b"e2")
    found = get_device(world.ledger.state, device.address)
    assert found is not None
    trail = device_audit(world.ledger.state, found)
    assert [e.seq for e in trail] == [0, 1, 2, 3]
    assert [e.action for e in trail] == [
        DeviceAction.REGISTERED,
        DeviceAction.STATE_CHANGED,
        DeviceAction.STATE_CHANGED,
        DeviceAction.STRIKE,
    ]
    assert [e.actor for e in trail] == [
        hospital.address,
        patient.address,
        patient.address,
        gateway.address,
    ]
    assert [e.state for e in trail] == [
        DeviceState.ACTIVE,
        DeviceState.RESTRICTED,
        DeviceState.ACTIVE,
        DeviceState.ACTIVE,
    ]
    assert [e.reason for e in trail] == ["", "odd", "fine", "rate_limit"]
    assert [e.evidence_hash for e in trail] == [b"", sha256(b"e1"), b"", sha256(b"log e2")]
    assert [e.strikes for e in trail] == [0, 0, 0, 1]
    heights = [e.height for e in trail]
    assert heights == sorted(heights) and len(set(heights)) == 4


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), max_size=12))
def test_same_transactions_give_the_same_state_root(
    ops: list[tuple[int, int]],
) -> None:
    from medchain.types import ChainParams

    keys = {name: AccountKeys.generate() for name in ("patient", "gateway")}
    founder, validator, rich = make_org("st-mary"), AccountKeys.generate(), AccountKeys.generate()
    devices = [AccountKeys.generate() for _ in range(3)]
    offences = list(DeviceOffence)

    def build() -> World:
        world = make_world((founder,), validator, rich, ChainParams(device_restrict_blocks=2))
        world.register(keys["patient"], Role.PATIENT)
        world.ok(
            founder.admin,
            "devices.register_gateway",
            RegisterGatewayArgs(keys["gateway"].address, "edge"),
        )
        for device in devices:
            world.ok(
                keys["patient"],
                "devices.register",
                _register_args(world, device, keys["patient"].address),
            )
        for n, (which, offence) in enumerate(ops):
            args = ReportArgs(devices[which].address, offences[offence], n.to_bytes(2, "big"))
            world.call(keys["gateway"], "devices.report", args)
        return world

    one, two = build(), build()
    assert one.ledger.state.root() == two.ledger.state.root()
    for device in devices:
        a = get_device(one.ledger.state, device.address)
        assert a is not None
        assert a.strikes == sum(1 for which, _ in ops if which == devices.index(device)) or (
            a.state is DeviceState.BANNED
        )
        # never more strikes than the ban threshold: a banned device takes no more
        assert a.strikes <= 6


def test_device_parameters_keep_old_genesis_hashes() -> None:
    """A genesis leaving the device parameters at their defaults hashes as before they
    existed (pinned in tests/node/test_fork.py); setting one changes the hash."""
    import dataclasses

    from medchain.node import genesis_hash
    from medchain.types import ChainParams, Genesis

    genesis = Genesis("medchain-pinned", 1, ChainParams())
    for changed in (
        ChainParams(device_strikes_restrict=1),
        ChainParams(device_strikes_ban=1),
        ChainParams(device_restrict_blocks=1),
    ):
        assert genesis_hash(dataclasses.replace(genesis, params=changed)) != genesis_hash(genesis)


def test_a_gateway_stops_when_its_organisation_leaves(
    validator: AccountKeys, rich: AccountKeys
) -> None:
    orgs = (make_org("org-a"), make_org("org-b"), make_org("org-c"))
    world = make_world(orgs, validator, rich)
    patient, gateway = AccountKeys.generate(), AccountKeys.generate()
    world.register(patient, Role.PATIENT)
    device = _register(world, patient, patient)
    world.ok(orgs[2].admin, "devices.register_gateway", RegisterGatewayArgs(gateway.address, "e"))
    found = get_gateway(world.ledger.state, gateway.address)
    assert found is not None and found.org_id == "org-c"
    assert _report(world, gateway, device.address, b"1").ok
    leave = OrganisationSpec("org-c", "", OrgKind.HOSPITAL, (), b"", b"")
    world.ok(orgs[0].admin, "orgs.propose", ProposeArgs(ProposalAction.LEAVE, leave, ""))
    world.ok(orgs[1].admin, "orgs.approve", ApproveArgs(1))
    before = world.entries_but_accounts()
    receipt = _report(world, gateway, device.address, b"2")
    assert (
        receipt.code == "unknown_gateway" and "no longer a member organisation" in receipt.message
    )
    assert world.entries_but_accounts() == before
