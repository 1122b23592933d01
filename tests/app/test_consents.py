"""Standing consents: granting and revoking them, which readers they make the contract
require on a new record or version, and the terms of the grants they lead to."""

from __future__ import annotations

from medchain.app import (
    DEFAULT_GRANT_PURPOSES,
    MAX_CONSENTS_IN_FORCE,
    AddProxyArgs,
    AddVersionArgs,
    AuditAction,
    CreateRecordArgs,
    CredentialRole,
    GrantConsentArgs,
    ProxyRelation,
    ProxyScope,
    PurposeOfUse,
    ReaderTerms,
    RevokeConsentArgs,
    Role,
    VersionWrap,
    WarrantArgs,
    audit_trail,
    consent_readers,
    consents_in_force,
    consents_of,
    get_consent,
    get_reader_grant,
    get_record,
    new_record_id,
)
from medchain.crypto import WRAPPED_KEY_SIZE, AccountKeys, format_address
from medchain.types import Receipt

from .conftest import World, fake_blob, fake_wraps, make_org, make_world

OBSERVATION = "Observation"
LOINC_HBA1C = "http://loinc.org|4548-4"


def _grant(world: World, sender: AccountKeys, args: GrantConsentArgs) -> int:
    world.ok(sender, "consents.grant", args)
    return consents_of(world.ledger.state, args.patient)[-1].consent_id


def _write(
    world: World,
    author: AccountKeys,
    patient: AccountKeys,
    *readers: bytes,
    resource_type: str = OBSERVATION,
    terms: tuple[ReaderTerms, ...] = (),
) -> tuple[Receipt, bytes]:
    """`author` writes a record for `patient` wrapped for `readers`: the receipt and the
    id the record has when it was accepted."""
    cid, digest = fake_blob(b"record by " + author.address + bytes([len(readers)]))
    nonce = world.nonces.get(author.address, 0)
    wraps = fake_wraps(patient.address, *readers)
    args = CreateRecordArgs(patient.address, resource_type, cid, digest, wraps, terms=terms)
    receipt = world.call(author, "records.create", args)
    return receipt, new_record_id(author.address, nonce)


def _version(world: World, author: AccountKeys, record_id: bytes, *wrapped: bytes) -> Receipt:
    cid, digest = fake_blob(b"version by " + author.address + bytes([len(wrapped)]))
    args = AddVersionArgs(record_id, cid, digest, fake_wraps(*wrapped))
    return world.call(author, "records.add_version", args)


# -- granting and revoking --------------------------------------------------------------


def test_a_patient_grants_a_standing_consent(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    expiry = world.now_ms() + 1_000
    args = GrantConsentArgs(
        patient.address, doctor.address, ("Condition", OBSERVATION), expires_ms=expiry
    )
    receipt = world.ok(patient, "consents.grant", args)
    consent = get_consent(world.ledger.state, 1)
    assert consent is not None
    assert (consent.patient, consent.reader, consent.granted_by) == (
        patient.address,
        doctor.address,
        patient.address,
    )
    assert consent.resource_types == ("Condition", OBSERVATION)
    assert consent.purposes == DEFAULT_GRANT_PURPOSES and consent.expires_ms == expiry
    assert consent.granted_height == world.height and consent.revoked_height == 0
    (event,) = [e for e in receipt.events if e.kind == "consent.granted"]
    attributes = dict((a.key, a.value) for a in event.attributes)
    assert attributes["consent"] == "1"
    assert attributes["reader"] == format_address(doctor.address)
    second = _grant(world, patient, GrantConsentArgs(patient.address, doctor.address))
    assert second == 2
    assert [c.consent_id for c in consents_of(world.ledger.state, patient.address)] == [1, 2]


def test_bad_consents_are_refused_without_trace(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    reader = doctor.address
    cases = {
        "not a FHIR resource type": GrantConsentArgs(patient.address, reader, ("labs",)),
        "named once": GrantConsentArgs(patient.address, reader, (OBSERVATION, OBSERVATION)),
        "is not a code as": GrantConsentArgs(patient.address, reader, codes=("4548-4",)),
        "no organisation 'nowhere'": GrantConsentArgs(
            patient.address, reader, organisations=("nowhere",)
        ),
        "not after the block time": GrantConsentArgs(patient.address, reader, expires_ms=5),
        "always reads their own": GrantConsentArgs(patient.address, patient.address),
    }
    for expected, args in cases.items():
        assert expected in world.refused(patient, "consents.grant", args, "invalid_argument")
    stranger = AccountKeys.generate().address
    world.refused(
        patient, "consents.grant", GrantConsentArgs(patient.address, stranger), "not_registered"
    )


def test_only_the_patient_or_their_grant_proxy_grants(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    args = GrantConsentArgs(patient.address, doctor.address)
    world.refused(doctor, "consents.grant", args, "not_a_proxy")
    carer = AccountKeys.generate()
    world.register(carer, Role.PATIENT)
    proxy = AddProxyArgs(carer.address, ProxyRelation.CARER, (ProxyScope.GRANT,), 0)
    world.ok(patient, "proxies.add", proxy)
    consent_id = _grant(world, carer, args)
    consent = get_consent(world.ledger.state, consent_id)
    assert consent is not None and consent.granted_by == carer.address
    world.ok(carer, "consents.revoke", RevokeConsentArgs(consent_id))


def test_a_revoked_consent_stays_listed_and_is_no_longer_in_force(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    consent_id = _grant(world, patient, GrantConsentArgs(patient.address, doctor.address))
    world.refused(doctor, "consents.revoke", RevokeConsentArgs(consent_id), "not_a_proxy")
    world.ok(patient, "consents.revoke", RevokeConsentArgs(consent_id))
    state = world.ledger.state
    (listed,) = consents_of(state, patient.address)
    assert listed.revoked_height == world.height
    assert consents_in_force(state, patient.address, world.now_ms()) == []
    assert "revoked at height" in world.refused(
        patient, "consents.revoke", RevokeConsentArgs(consent_id), "not_authorised"
    )
    world.refused(patient, "consents.revoke", RevokeConsentArgs(99), "invalid_argument")


def test_at_most_thirty_two_consents_are_in_force(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    for _ in range(MAX_CONSENTS_IN_FORCE):
        _grant(world, patient, GrantConsentArgs(patient.address, doctor.address))
    args = GrantConsentArgs(patient.address, doctor.address)
    assert "revoke one first" in world.refused(patient, "consents.grant", args, "invalid_argument")
    world.ok(patient, "consents.revoke", RevokeConsentArgs(1))
    _grant(world, patient, args)


# -- the readers the contract requires --------------------------------------------------


def test_consent_readers_match_type_author_and_organisation(
    validator: AccountKeys, rich: AccountKeys
) -> None:
    orgs = (make_org("org-a"), make_org("org-b"))
    world = make_world(orgs, validator, rich)
    patient, gp, cardiologist, dietitian = (AccountKeys.generate() for _ in range(4))
    for keys in (patient, gp, cardiologist, dietitian):
        world.register(keys, Role.PATIENT)
    nurse_a = world.staff(CredentialRole.NURSE, org=orgs[0])
    nurse_b = world.staff(CredentialRole.NURSE, org=orgs[1])
    by_type = _grant(world, patient, GrantConsentArgs(patient.address, gp.address, (OBSERVATION,)))
    by_org = _grant(
        world,
        patient,
        GrantConsentArgs(patient.address, cardiologist.address, organisations=("org-b",)),
    )
    _grant(
        world, patient, GrantConsentArgs(patient.address, dietitian.address, codes=(LOINC_HBA1C,))
    )
    state, now = world.ledger.state, world.now_ms()

    def required(author: AccountKeys, resource_type: str) -> dict[bytes, int]:
        found = consent_readers(state, patient.address, author.address, resource_type, now)
        return {reader: consent.consent_id for reader, consent in found}

    assert required(nurse_a, OBSERVATION) == {gp.address: by_type}
    assert required(nurse_a, "Condition") == {}
    assert required(nurse_b, "Condition") == {cardiologist.address: by_org}
    assert required(nurse_b, OBSERVATION) == {gp.address: by_type, cardiologist.address: by_org}


def test_a_standing_consent_makes_a_third_partys_record_readable_by_the_gp(
    world: World, patient: AccountKeys, doctor: AccountKeys
) -> None:
    gp = doctor
    expiry = world.now_ms() + 10_000
    purposes = (PurposeOfUse.CARE_MANAGEMENT, PurposeOfUse.TREATMENT)
    args = GrantConsentArgs(
        patient.address, gp.address, (OBSERVATION,), purposes=purposes, expires_ms=expiry
    )
    consent_id = _grant(world, patient, args)
    clinician = world.staff(CredentialRole.NURSE, "Nurse Joy")
    omitted, _ = _write(world, clinician, patient, clinician.address)
    assert (omitted.ok, omitted.code) == (False, "reader_required")
    assert f"standing consent {consent_id}" in omitted.message
    assert format_address(gp.address) in omitted.message
    other_type, _ = _write(world, clinician, patient, resource_type="Condition")
    assert other_type.ok, other_type.message
    receipt, record_id = _write(world, clinician, patient, clinician.address, gp.address)
    assert receipt.ok, receipt.message
    state = world.ledger.state
    record = get_record(state, record_id)
    assert record is not None and gp.address in record.readers
    grant = get_reader_grant(state, record_id, gp.address)
    assert grant is not None
    assert (grant.purposes, grant.expires_ms, grant.consent_id) == (purposes, expiry, consent_id)


def test_a_new_version_must_be_wrapped_for_a_consents_reader_who_then_joins(
    world: World, patient: AccountKeys, doctor: AccountKeys, doctor2: AccountKeys
) -> None:
    receipt, record_id = _write(world, doctor2, patient, doctor2.address)
    assert receipt.ok
    consent_id = _grant(world, patient, GrantConsentArgs(patient.address, doctor.address))
    omitted = _version(world, doctor2, record_id, patient.address, doctor2.address)
    assert (omitted.ok, omitted.code) == (False, "reader_required")
    wrapped = (patient.address, doctor.address, doctor2.address)
    assert _version(world, doctor2, record_id, *wrapped).ok
    state = world.ledger.state
    record = get_record(state, record_id)
    assert record is not None and doctor.address in record.readers
    joined = [e for e in audit_trail(state, record) if e.action is AuditAction.GRANTED]
    assert (joined[-1].subject, joined[-1].version) == (doctor.address, 2)
    grant = get_reader_grant(state, record_id, doctor.address)
    assert grant is not None and grant.consent_id == consent_id


def test_a_revoked_or_expired_consent_requires_no_one(
    world: World, patient: AccountKeys, doctor: AccountKeys, doctor2: AccountKeys
) -> None:
    revoked = _grant(world, patient, GrantConsentArgs(patient.address, doctor.address))
    world.ok(patient, "consents.revoke", RevokeConsentArgs(revoked))
    expiring = GrantConsentArgs(patient.address, doctor.address, expires_ms=world.now_ms() + 2)
    _grant(world, patient, expiring)
    world.empty_blocks(2)
    receipt, _ = _write(world, doctor2, patient, doctor2.address)
    assert receipt.ok, receipt.message


# -- consents with codes: applied by the writer's client --------------------------------


def test_a_consent_with_codes_is_not_required_but_names_the_terms_it_grants(
    world: World, patient: AccountKeys, doctor: AccountKeys, doctor2: AccountKeys
) -> None:
    purposes = (PurposeOfUse.RESEARCH,)
    coded = GrantConsentArgs(
        patient.address, doctor.address, codes=(LOINC_HBA1C,), purposes=purposes
    )
    consent_id = _grant(world, patient, coded)
    without, _ = _write(world, doctor2, patient, doctor2.address)
    assert without.ok, without.message  # the code is in the ciphertext: the writer decides
    terms = (ReaderTerms(doctor.address, (), 0, consent_id),)
    receipt, record_id = _write(world, doctor2, patient, doctor.address, terms=terms)
    assert receipt.ok, receipt.message
    grant = get_reader_grant(world.ledger.state, record_id, doctor.address)
    assert grant is not None
    assert (grant.purposes, grant.consent_id) == (purposes, consent_id)
    wrong_type = _write(
        world, doctor2, patient, doctor.address, resource_type="Condition", terms=terms
    )[0]
    assert wrong_type.ok  # Condition is covered: the consent names no types
    other = ReaderTerms(doctor2.address, (), 0, consent_id)
    refused, _ = _write(world, doctor, patient, doctor2.address, terms=(other,))
    assert (refused.ok, refused.code) == (False, "invalid_argument")
    assert "does not cover" in refused.message


def test_a_version_may_join_the_reader_of_a_covering_consent_with_codes(
    world: World, patient: AccountKeys, doctor: AccountKeys, doctor2: AccountKeys
) -> None:
    receipt, record_id = _write(world, doctor2, patient, doctor2.address)
    assert receipt.ok
    stranger = world.staff(CredentialRole.NURSE)
    wrapped = (patient.address, doctor2.address, stranger.address)
    assert _version(world, doctor2, record_id, *wrapped).code == "key_wrap_mismatch"
    coded = GrantConsentArgs(patient.address, doctor.address, (OBSERVATION,), (LOINC_HBA1C,))
    consent_id = _grant(world, patient, coded)
    assert _version(world, doctor2, record_id, patient.address, doctor2.address).ok
    joined = _version(world, doctor2, record_id, patient.address, doctor.address, doctor2.address)
    assert joined.ok, joined.message
    grant = get_reader_grant(world.ledger.state, record_id, doctor.address)
    assert grant is not None and grant.consent_id == consent_id


def test_a_warrant_under_a_consent_takes_its_terms_if_it_covers_the_record(
    world: World, patient: AccountKeys, doctor: AccountKeys, doctor2: AccountKeys
) -> None:
    receipt, record_id = _write(world, doctor2, patient, doctor2.address)
    assert receipt.ok
    purposes = (PurposeOfUse.CARE_MANAGEMENT,)
    for_conditions = GrantConsentArgs(patient.address, doctor.address, ("Condition",))
    other_id = _grant(world, patient, for_conditions)
    coded = GrantConsentArgs(
        patient.address, doctor.address, (OBSERVATION,), (LOINC_HBA1C,), purposes=purposes
    )
    consent_id = _grant(world, patient, coded)
    wraps = (VersionWrap(1, b"\x02" * WRAPPED_KEY_SIZE),)
    outside = WarrantArgs(record_id, doctor.address, wraps, consent_id=other_id)
    assert "does not cover" in world.refused(
        patient, "records.warrant", outside, "invalid_argument"
    )
    world.ok(
        patient,
        "records.warrant",
        WarrantArgs(record_id, doctor.address, wraps, consent_id=consent_id),
    )
    grant = get_reader_grant(world.ledger.state, record_id, doctor.address)
    assert grant is not None and (grant.purposes, grant.consent_id) == (purposes, consent_id)
