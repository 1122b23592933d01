"""`records.rewrap`: the owner replaces their own wraps, readers keep theirs."""

from __future__ import annotations

from medchain.app import (
    AddVersionArgs,
    AuditAction,
    CreateRecordArgs,
    RewrapArgs,
    VersionWrap,
    audit_trail,
    get_record,
    get_version,
    new_record_id,
)
from medchain.crypto import WRAPPED_KEY_SIZE, AccountKeys

from .conftest import World, fake_blob, fake_wraps

NEW_WRAP = b"\x09" * WRAPPED_KEY_SIZE


def _record_with_two_versions(world: World, patient: AccountKeys, doctor: AccountKeys) -> bytes:
    cid, digest = fake_blob(b"v1")
    nonce = world.nonces.get(doctor.address, 0)
    wraps = fake_wraps(patient.address, doctor.address)
    world.ok(
        doctor,
        "records.create",
        CreateRecordArgs(patient.address, "Observation", cid, digest, wraps),
    )
    record_id = new_record_id(doctor.address, nonce)
    cid2, digest2 = fake_blob(b"v2")
    world.ok(patient, "records.add_version", AddVersionArgs(record_id, cid2, digest2, wraps))
    return record_id


def test_owner_rewraps_named_versions_only_their_own_wrap(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    record_id = _record_with_two_versions(world, patient, doctor)
    world.ok(patient, "records.rewrap", RewrapArgs(record_id, (VersionWrap(2, NEW_WRAP),)))
    state = world.ledger.state
    v1, v2 = get_version(state, record_id, 1), get_version(state, record_id, 2)
    assert v1 is not None and v2 is not None
    assert {w.reader: w.wrapped_key for w in v2.wraps} == {
        patient.address: NEW_WRAP,
        doctor.address: b"\x01" * WRAPPED_KEY_SIZE,
    }
    assert all(w.wrapped_key != NEW_WRAP for w in v1.wraps)
    record = get_record(state, record_id)
    assert record is not None
    assert audit_trail(state, record)[-1].action is AuditAction.REWRAPPED


def test_the_latest_version_must_be_named(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    record_id = _record_with_two_versions(world, patient, doctor)
    message = world.refused(
        patient,
        "records.rewrap",
        RewrapArgs(record_id, (VersionWrap(1, NEW_WRAP),)),
        "invalid_argument",
    )
    assert "latest version (2)" in message
    world.refused(
        patient,
        "records.rewrap",
        RewrapArgs(record_id, (VersionWrap(2, NEW_WRAP), VersionWrap(1, NEW_WRAP))),
        "invalid_argument",
    )


def test_only_the_owner_rewraps(world: World, patient: AccountKeys, doctor: AccountKeys) -> None:
    record_id = _record_with_two_versions(world, patient, doctor)
    world.refused(
        doctor, "records.rewrap", RewrapArgs(record_id, (VersionWrap(2, NEW_WRAP),)), "not_owner"
    )


def test_a_wrong_sized_wrap_is_refused(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    record_id = _record_with_two_versions(world, patient, doctor)
    world.refused(
        patient,
        "records.rewrap",
        RewrapArgs(record_id, (VersionWrap(2, b"short"),)),
        "invalid_argument",
    )
