"""The research contract (ALC): grants, get_data, and removal on unwarrant."""

from __future__ import annotations

from medchain.app import (
    AuditAction,
    CreateRecordArgs,
    ResearchGrantArgs,
    ResearchRevokeArgs,
    UnwarrantArgs,
    audit_trail,
    get_data,
    get_record,
    new_record_id,
)
from medchain.crypto import AccountKeys

from .conftest import World, fake_blob, fake_wraps


def _record(world: World, patient: AccountKeys) -> bytes:
    cid, digest = fake_blob(b"full record")
    nonce = world.nonces.get(patient.address, 0)
    world.ok(
        patient,
        "records.create",
        CreateRecordArgs(patient.address, "Condition", cid, digest, fake_wraps(patient.address)),
    )
    return new_record_id(patient.address, nonce)


def _grant(
    world: World, patient: AccountKeys, record_id: bytes, institution: bytes
) -> ResearchGrantArgs:
    cid, digest = fake_blob(b"deidentified copy" + record_id)
    return ResearchGrantArgs(
        record_id, institution, cid, digest, fake_wraps(patient.address, institution)
    )


def test_grant_lists_record_for_institution(
    world: World, patient: AccountKeys, institution: AccountKeys
) -> None:
    record_id = _record(world, patient)
    world.ok(patient, "research.grant", _grant(world, patient, record_id, institution.address))
    (entry,) = get_data(world.ledger.state, institution.address)
    assert entry.record_id == record_id and entry.patient == patient.address
    assert entry.source_version == 1


def test_unwarrant_removes_research_access_automatically(
    world: World, patient: AccountKeys, institution: AccountKeys
) -> None:
    first, second = _record(world, patient), _record(world, patient)
    world.ok(patient, "research.grant", _grant(world, patient, first, institution.address))
    world.ok(patient, "research.grant", _grant(world, patient, second, institution.address))
    world.ok(patient, "records.unwarrant", UnwarrantArgs(first, institution.address))
    assert [e.record_id for e in get_data(world.ledger.state, institution.address)] == [second]
    record = get_record(world.ledger.state, first)
    assert record is not None
    assert audit_trail(world.ledger.state, record)[-1].action is AuditAction.RESEARCH_REVOKED


def test_explicit_revoke_and_empty_list(
    world: World, patient: AccountKeys, institution: AccountKeys
) -> None:
    record_id = _record(world, patient)
    world.ok(patient, "research.grant", _grant(world, patient, record_id, institution.address))
    world.ok(patient, "research.revoke", ResearchRevokeArgs(record_id, institution.address))
    assert get_data(world.ledger.state, institution.address) == []
    again = world.call(
        patient, "research.revoke", ResearchRevokeArgs(record_id, institution.address)
    )
    assert again.code == "not_authorised"


def test_only_owner_grants_and_only_to_institutions(
    world: World, patient: AccountKeys, doctor: AccountKeys, institution: AccountKeys
) -> None:
    record_id = _record(world, patient)
    by_other = world.call(
        doctor, "research.grant", _grant(world, patient, record_id, institution.address)
    )
    assert by_other.code == "not_owner"
    to_doctor = world.call(
        patient, "research.grant", _grant(world, patient, record_id, doctor.address)
    )
    assert to_doctor.code == "unknown_organisation"
    assert "is not the account of a member research organisation" in to_doctor.message
    hospital = world.orgs[0].account
    to_hospital = world.call(
        patient, "research.grant", _grant(world, patient, record_id, hospital.address)
    )
    assert to_hospital.code == "unknown_organisation"
    assert "'st-mary' is a hospital organisation; this needs a research one" in (
        to_hospital.message
    )
    world.ok(patient, "research.grant", _grant(world, patient, record_id, institution.address))
    twice = world.call(
        patient, "research.grant", _grant(world, patient, record_id, institution.address)
    )
    assert twice.code == "already_authorised"
