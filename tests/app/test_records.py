"""The medical-record contract (MRC): creation, warrant/unwarrant, versions, audit."""

from __future__ import annotations

from medchain.app import (
    DEFAULT_GRANT_PURPOSES,
    AddVersionArgs,
    ApproveArgs,
    AuditAction,
    CreateRecordArgs,
    CredentialActionArgs,
    CredentialRole,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposeArgs,
    PurposeOfUse,
    ReaderTerms,
    Role,
    SetTermsArgs,
    UnwarrantArgs,
    VersionWrap,
    WarrantArgs,
    audit_trail,
    get_reader_grant,
    get_record,
    get_version,
    new_record_id,
    patient_records,
)
from medchain.crypto import WRAPPED_KEY_SIZE, AccountKeys
from medchain.types import Receipt

from .conftest import OrgKeys, World, fake_blob, fake_wraps, make_org, make_world


def _create(world: World, author: AccountKeys, patient: AccountKeys, *readers: bytes) -> bytes:
    cid, digest = fake_blob(b"ciphertext-1")
    nonce = world.nonces.get(author.address, 0)
    world.ok(
        author,
        "records.create",
        CreateRecordArgs(
            patient.address, "Observation", cid, digest, fake_wraps(patient.address, *readers)
        ),
    )
    return new_record_id(author.address, nonce)


def _wrap() -> tuple[VersionWrap, ...]:
    return (VersionWrap(1, b"\x02" * WRAPPED_KEY_SIZE),)


def test_doctor_creates_record_owned_by_patient(
    world: World, doctor: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    record = get_record(world.ledger.state, record_id)
    assert record is not None
    assert record.owner == patient.address and record.author == doctor.address
    assert record.readers == (doctor.address,)
    assert patient_records(world.ledger.state, patient.address) == [record_id]
    actions = [e.action for e in audit_trail(world.ledger.state, record)]
    assert actions == [AuditAction.CREATED, AuditAction.GRANTED]


def test_patient_list_is_append_only_and_ordered(
    world: World, doctor: AccountKeys, patient: AccountKeys
) -> None:
    ids = [_create(world, doctor, patient) for _ in range(3)]
    assert patient_records(world.ledger.state, patient.address) == ids


def test_wraps_must_cover_exactly_owner_and_readers(
    world: World, doctor: AccountKeys, patient: AccountKeys
) -> None:
    cid, digest = fake_blob(b"x")
    missing_owner = world.call(
        doctor,
        "records.create",
        CreateRecordArgs(patient.address, "Observation", cid, digest, fake_wraps(doctor.address)),
    )
    # without the owner's wrap the doctor alone would be the reader list: owner missing
    assert not missing_owner.ok and missing_owner.code == "key_wrap_mismatch"
    unsorted = tuple(reversed(fake_wraps(patient.address, doctor.address)))
    receipt = world.call(
        doctor,
        "records.create",
        CreateRecordArgs(patient.address, "Observation", cid, digest, unsorted),
    )
    assert not receipt.ok and receipt.code == "invalid_argument"


def test_cid_must_match_hash(world: World, doctor: AccountKeys, patient: AccountKeys) -> None:
    cid, _ = fake_blob(b"one")
    _, other_digest = fake_blob(b"two")
    receipt = world.call(
        doctor,
        "records.create",
        CreateRecordArgs(
            patient.address, "Observation", cid, other_digest, fake_wraps(patient.address)
        ),
    )
    assert not receipt.ok and "does not match" in receipt.message
    bad = world.call(
        doctor,
        "records.create",
        CreateRecordArgs(
            patient.address, "Observation", "not-a-cid", other_digest, fake_wraps(patient.address)
        ),
    )
    assert not bad.ok and bad.code == "invalid_argument"


def test_unregistered_author_or_patient_refused(world: World, patient: AccountKeys) -> None:
    stranger = AccountKeys.generate()
    cid, digest = fake_blob(b"x")
    receipt = world.call(
        stranger,
        "records.create",
        CreateRecordArgs(patient.address, "Observation", cid, digest, fake_wraps(patient.address)),
    )
    assert not receipt.ok and receipt.code == "not_credentialed"
    assert "holds no doctor or nurse or pharmacist credential" in receipt.message
    unregistered = AccountKeys.generate()
    receipt = world.call(
        patient,
        "records.create",
        CreateRecordArgs(
            unregistered.address, "Observation", cid, digest, fake_wraps(unregistered.address)
        ),
    )
    assert not receipt.ok and receipt.code == "not_registered"
    assert "medchain register" in receipt.message


def test_only_owner_warrants_and_unwarrants(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    refused = world.call(
        doctor, "records.warrant", WarrantArgs(record_id, doctor2.address, _wrap())
    )
    assert not refused.ok and refused.code == "not_owner"
    world.ok(patient, "records.warrant", WarrantArgs(record_id, doctor2.address, _wrap()))
    record = get_record(world.ledger.state, record_id)
    assert record is not None and doctor2.address in record.readers
    version = get_version(world.ledger.state, record_id, 1)
    assert version is not None and doctor2.address in [w.reader for w in version.wraps]
    again = world.call(patient, "records.warrant", WarrantArgs(record_id, doctor2.address, _wrap()))
    assert again.code == "already_authorised"
    refused = world.call(doctor, "records.unwarrant", UnwarrantArgs(record_id, doctor2.address))
    assert refused.code == "not_owner"
    world.ok(patient, "records.unwarrant", UnwarrantArgs(record_id, doctor2.address))
    record = get_record(world.ledger.state, record_id)
    assert record is not None and doctor2.address not in record.readers


def test_new_version_after_revoke_excludes_the_revoked_reader(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address, doctor2.address)
    world.ok(patient, "records.unwarrant", UnwarrantArgs(record_id, doctor2.address))
    cid, digest = fake_blob(b"ciphertext-2")
    with_revoked = world.call(
        doctor,
        "records.add_version",
        AddVersionArgs(
            record_id, cid, digest, fake_wraps(patient.address, doctor.address, doctor2.address)
        ),
    )
    assert not with_revoked.ok and with_revoked.code == "key_wrap_mismatch"
    assert "not authorised" in with_revoked.message
    world.ok(
        doctor,
        "records.add_version",
        AddVersionArgs(record_id, cid, digest, fake_wraps(patient.address, doctor.address)),
    )
    version = get_version(world.ledger.state, record_id, 2)
    assert version is not None
    assert [w.reader for w in version.wraps] == sorted([patient.address, doctor.address])
    record = get_record(world.ledger.state, record_id)
    assert record is not None
    assert [e.action for e in audit_trail(world.ledger.state, record)] == [
        AuditAction.CREATED,
        AuditAction.GRANTED,
        AuditAction.GRANTED,
        AuditAction.REVOKED,
        AuditAction.VERSIONED,
    ]


def test_revoked_reader_cannot_add_versions(
    world: World, doctor: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    world.ok(patient, "records.unwarrant", UnwarrantArgs(record_id, doctor.address))
    cid, digest = fake_blob(b"v2")
    receipt = world.call(
        doctor,
        "records.add_version",
        AddVersionArgs(record_id, cid, digest, fake_wraps(patient.address)),
    )
    assert not receipt.ok and receipt.code == "not_authorised"


def test_warrant_must_cover_latest_version(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    cid, digest = fake_blob(b"v2")
    world.ok(
        patient,
        "records.add_version",
        AddVersionArgs(record_id, cid, digest, fake_wraps(patient.address, doctor.address)),
    )
    receipt = world.call(
        patient, "records.warrant", WarrantArgs(record_id, doctor2.address, _wrap())
    )
    assert not receipt.ok and "latest version (2)" in receipt.message


def test_unknown_record(world: World, patient: AccountKeys) -> None:
    receipt = world.call(patient, "records.unwarrant", UnwarrantArgs(b"\x00" * 16, patient.address))
    assert not receipt.ok and receipt.code == "unknown_record"


def test_audit_entries_carry_height_actor_and_tx(
    world: World, doctor: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient)
    record = get_record(world.ledger.state, record_id)
    assert record is not None
    (entry,) = audit_trail(world.ledger.state, record)
    assert entry.actor == doctor.address and entry.height == world.height and len(entry.tx_id) == 32


def _refused_create(world: World, author: AccountKeys, patient: AccountKeys) -> str:
    """`author` may not write for `patient`: refused, and nothing but fee and nonce moved."""
    cid, digest = fake_blob(b"refused")
    wraps = fake_wraps(patient.address)
    args = CreateRecordArgs(patient.address, "Observation", cid, digest, wraps)
    return world.refused(author, "records.create", args, "not_credentialed")


def test_a_patient_writes_their_own_record_without_a_credential(
    world: World, patient: AccountKeys
) -> None:
    record_id = _create(world, patient, patient)
    record = get_record(world.ledger.state, record_id)
    assert record is not None and record.author == patient.address


def test_a_self_declared_doctor_cannot_write_for_a_stranger(
    world: World, patient: AccountKeys
) -> None:
    pretender = AccountKeys.generate()
    world.register(pretender, Role.PATIENT)
    message = _refused_create(world, pretender, patient)
    assert "holds no doctor or nurse or pharmacist credential" in message
    assert patient_records(world.ledger.state, patient.address) == []


def test_an_expired_suspended_or_revoked_clinician_cannot_write(
    world: World, founder: OrgKeys, patient: AccountKeys
) -> None:
    expiring, suspended, revoked = (world.staff(CredentialRole.NURSE) for _ in range(3))
    world.credential(expiring, CredentialRole.NURSE, expires_ms=world.now_ms() + 2)
    world.ok(founder.admin, "credentials.suspend", CredentialActionArgs(suspended.address, "audit"))
    world.ok(founder.admin, "credentials.revoke", CredentialActionArgs(revoked.address, "struck"))
    world.empty_blocks(2)
    assert "expired at block time" in _refused_create(world, expiring, patient)
    assert "was suspended by" in _refused_create(world, suspended, patient)
    assert "was revoked by" in _refused_create(world, revoked, patient)


def test_a_doctor_of_an_organisation_that_left_stops_at_that_height(
    validator: AccountKeys, rich: AccountKeys
) -> None:
    orgs = (make_org("org-a"), make_org("org-b"), make_org("org-c", "clinic"))
    world = make_world(orgs, validator, rich)
    patient = AccountKeys.generate()
    world.register(patient, Role.PATIENT)
    doctor = world.staff(CredentialRole.DOCTOR, org=orgs[2])
    _create(world, doctor, patient, doctor.address)
    leave = OrganisationSpec("org-c", "", OrgKind.CLINIC, (), b"", b"")
    world.ok(orgs[0].admin, "orgs.propose", ProposeArgs(ProposalAction.LEAVE, leave, ""))
    world.ok(orgs[1].admin, "orgs.approve", ApproveArgs(1))
    message = _refused_create(world, doctor, patient)
    assert f"left the consortium at height {world.height - 1}" in message


def test_a_reader_adds_versions_only_while_credentialed(
    world: World, founder: OrgKeys, doctor: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    cid, digest = fake_blob(b"v2")
    args = AddVersionArgs(record_id, cid, digest, fake_wraps(patient.address, doctor.address))
    world.ok(doctor, "records.add_version", args)
    world.ok(founder.admin, "credentials.suspend", CredentialActionArgs(doctor.address, ""))
    before = world.entries_but_accounts()
    receipt = world.call(doctor, "records.add_version", args)
    assert (receipt.ok, receipt.code) == (False, "not_credentialed")
    assert "cannot add a version to a record" in receipt.message
    assert world.entries_but_accounts() == before


# -- grant terms: purposes, expiry, set_terms -------------------------------------------


def _version(world: World, author: AccountKeys, record_id: bytes, *wrapped: bytes) -> Receipt:
    cid, digest = fake_blob(b"version " + bytes([len(wrapped)]) + author.address)
    args = AddVersionArgs(record_id, cid, digest, fake_wraps(*wrapped))
    return world.call(author, "records.add_version", args)


def test_a_warrant_stores_its_purposes_and_expiry_and_unwarrant_deletes_them(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient)
    expiry = world.now_ms() + 50
    purposes = (PurposeOfUse.RESEARCH, PurposeOfUse.PAYMENT)
    args = WarrantArgs(record_id, doctor2.address, _wrap(), purposes, expiry)
    world.ok(patient, "records.warrant", args)
    grant = get_reader_grant(world.ledger.state, record_id, doctor2.address)
    assert grant is not None
    assert grant.purposes == (PurposeOfUse.PAYMENT, PurposeOfUse.RESEARCH)
    assert (grant.expires_ms, grant.consent_id) == (expiry, 0)
    world.ok(patient, "records.unwarrant", UnwarrantArgs(record_id, doctor2.address))
    assert get_reader_grant(world.ledger.state, record_id, doctor2.address) is None


def test_a_warrant_without_purposes_grants_treatment_and_a_past_expiry_is_refused(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient)
    past = WarrantArgs(record_id, doctor2.address, _wrap(), (), world.now_ms() - 1)
    assert "not after the block time" in world.refused(
        patient, "records.warrant", past, "invalid_argument"
    )
    world.ok(patient, "records.warrant", WarrantArgs(record_id, doctor2.address, _wrap()))
    grant = get_reader_grant(world.ledger.state, record_id, doctor2.address)
    assert grant is not None and grant.purposes == DEFAULT_GRANT_PURPOSES
    assert grant.expires_ms == 0


def test_create_stores_the_writers_terms_and_defaults_for_the_others(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    cid, digest = fake_blob(b"with terms")
    expiry = world.now_ms() + 100
    terms = (ReaderTerms(doctor2.address, (PurposeOfUse.CARE_MANAGEMENT,), expiry),)
    wraps = fake_wraps(patient.address, doctor.address, doctor2.address)
    nonce = world.nonces.get(doctor.address, 0)
    args = CreateRecordArgs(patient.address, "Observation", cid, digest, wraps, terms=terms)
    world.ok(doctor, "records.create", args)
    record_id = new_record_id(doctor.address, nonce)
    state = world.ledger.state
    own = get_reader_grant(state, record_id, doctor.address)
    other = get_reader_grant(state, record_id, doctor2.address)
    assert own is not None and (own.purposes, own.expires_ms) == (DEFAULT_GRANT_PURPOSES, 0)
    assert other is not None
    assert (other.purposes, other.expires_ms) == ((PurposeOfUse.CARE_MANAGEMENT,), expiry)


def test_terms_for_a_reader_not_wrapped_for_are_refused(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    cid, digest = fake_blob(b"stray terms")
    terms = (ReaderTerms(doctor2.address, (), 0),)
    wraps = fake_wraps(patient.address, doctor.address)
    args = CreateRecordArgs(patient.address, "Observation", cid, digest, wraps, terms=terms)
    message = world.refused(doctor, "records.create", args, "invalid_argument")
    assert "not wrapped for as a reader" in message


def test_an_expired_grant_drops_the_reader_from_the_next_version(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    expiry = world.now_ms() + 3
    args = WarrantArgs(record_id, doctor2.address, _wrap(), (), expiry)
    world.ok(patient, "records.warrant", args)
    world.empty_blocks(3)
    assert world.now_ms() >= expiry
    wrapped_for_expired = _version(
        world, patient, record_id, patient.address, doctor.address, doctor2.address
    )
    assert (wrapped_for_expired.ok, wrapped_for_expired.code) == (False, "key_wrap_mismatch")
    assert "has expired" in wrapped_for_expired.message
    receipt = _version(world, patient, record_id, patient.address, doctor.address)
    assert receipt.ok, receipt.message
    state = world.ledger.state
    record = get_record(state, record_id)
    assert record is not None and record.readers == (doctor.address,)
    version = get_version(state, record_id, 2)
    assert version is not None
    assert doctor2.address not in {w.reader for w in version.wraps}
    old = get_version(state, record_id, 1)
    assert old is not None and doctor2.address in {w.reader for w in old.wraps}
    expired = [e for e in audit_trail(state, record) if e.action is AuditAction.EXPIRED]
    assert [(e.subject, e.version) for e in expired] == [(doctor2.address, 2)]
    assert get_reader_grant(state, record_id, doctor2.address) is None


def test_a_reader_whose_grant_expired_cannot_add_a_version(
    world: World, doctor: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    expiry = world.now_ms() + 2
    terms = SetTermsArgs(record_id, doctor.address, (), expiry)
    world.ok(patient, "records.set_terms", terms)
    world.empty_blocks(2)
    receipt = _version(world, doctor, record_id, patient.address)
    assert (receipt.ok, receipt.code) == (False, "not_authorised")
    assert "has expired" in receipt.message


def test_set_terms_renews_an_expiry_before_the_next_version(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient)
    args = WarrantArgs(record_id, doctor2.address, _wrap(), (), world.now_ms() + 2)
    world.ok(patient, "records.warrant", args)
    renewed = SetTermsArgs(record_id, doctor2.address, (PurposeOfUse.OPERATIONS,), 0)
    world.ok(patient, "records.set_terms", renewed)
    world.empty_blocks(3)
    assert _version(world, patient, record_id, patient.address, doctor2.address).ok
    state = world.ledger.state
    grant = get_reader_grant(state, record_id, doctor2.address)
    assert grant is not None and grant.purposes == (PurposeOfUse.OPERATIONS,)
    record = get_record(state, record_id)
    assert record is not None
    changed = [e for e in audit_trail(state, record) if e.action is AuditAction.TERMS_CHANGED]
    assert [e.subject for e in changed] == [doctor2.address]


def test_only_the_owner_sets_terms_and_only_for_a_reader(
    world: World, doctor: AccountKeys, doctor2: AccountKeys, patient: AccountKeys
) -> None:
    record_id = _create(world, doctor, patient, doctor.address)
    by_reader = SetTermsArgs(record_id, doctor.address, (), 0)
    world.refused(doctor, "records.set_terms", by_reader, "not_owner")
    stranger = SetTermsArgs(record_id, doctor2.address, (), 0)
    assert "is not a reader" in world.refused(
        patient, "records.set_terms", stranger, "not_authorised"
    )
