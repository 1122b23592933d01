"""Credentials: issued, renewed, suspended, reinstated and revoked by an admin of the
issuing member organisation, with their history; valid only while active, unexpired
and issued by a member."""

from __future__ import annotations

import pytest

from medchain.app import (
    CLINICIAN_ROLES,
    ApproveArgs,
    CredentialActionArgs,
    CredentialRole,
    CredentialStatus,
    IssueArgs,
    NotCredentialed,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposeArgs,
    Role,
    credential_history,
    credentials_of,
    get_credential,
    require_credential,
    staff_of,
    valid_credential,
)
from medchain.crypto import AccountKeys
from tests.app.conftest import OrgKeys, World, make_org, make_world

DOCTOR = (CredentialRole.DOCTOR,)


@pytest.fixture
def second(world: World) -> OrgKeys:
    """A second member organisation, admitted by the founder alone."""
    org = make_org("north-clinic", "clinic")
    world.admit(org, "North Clinic")
    return org


@pytest.fixture
def subject(world: World) -> AccountKeys:
    keys = AccountKeys.generate()
    world.register(keys, Role.PATIENT)
    return keys


def not_credentialed(world: World, subject: AccountKeys) -> str:
    with pytest.raises(NotCredentialed) as caught:
        require_credential(
            world.ledger.state, subject.address, DOCTOR, world.now_ms(), "write a record"
        )
    assert valid_credential(world.ledger.state, subject.address, DOCTOR, world.now_ms()) is None
    return caught.value.message


def test_an_admin_issues_a_credential_with_its_history(
    world: World, founder: OrgKeys, subject: AccountKeys
) -> None:
    receipt = world.credential(subject, CredentialRole.DOCTOR, "Dr Ana Ruiz, cardiology")
    assert [e.kind for e in receipt.events] == ["credential.issued"]
    state = world.ledger.state
    credential = get_credential(state, subject.address, founder.org_id)
    assert credential is not None
    assert (credential.role, credential.name, credential.status) == (
        CredentialRole.DOCTOR,
        "Dr Ana Ruiz, cardiology",
        CredentialStatus.ACTIVE,
    )
    assert credential.issued_height == world.height and credential.expires_ms == 0
    assert credentials_of(state, subject.address) == [credential]
    assert staff_of(state, founder.org_id) == [credential]
    (event,) = credential_history(state, credential)
    assert (event.action, event.actor, event.height) == (
        "issued",
        founder.admin.address,
        world.height,
    )
    assert valid_credential(state, subject.address, CLINICIAN_ROLES, world.now_ms()) == credential
    assert valid_credential(state, subject.address, (CredentialRole.NURSE,), world.now_ms()) is None


def test_no_credential_says_how_to_get_one(world: World, subject: AccountKeys) -> None:
    message = not_credentialed(world, subject)
    assert "holds no doctor credential, needed to write a record" in message
    assert "`medchain org credential`" in message


def test_only_an_admin_of_a_member_issues(world: World, subject: AccountKeys) -> None:
    args = IssueArgs(subject.address, CredentialRole.DOCTOR, "Dr Self", 0)
    message = world.refused(subject, "credentials.issue", args, "not_an_admin")
    assert "is not an admin of a member organisation" in message
    assert credentials_of(world.ledger.state, subject.address) == []


def test_an_expired_credential_is_not_valid(
    world: World, founder: OrgKeys, subject: AccountKeys
) -> None:
    expires = world.now_ms() + 3
    world.credential(subject, CredentialRole.DOCTOR, expires_ms=expires)
    assert valid_credential(world.ledger.state, subject.address, DOCTOR, expires - 1) is not None
    world.empty_blocks(3)
    message = not_credentialed(world, subject)
    assert f"expired at block time {expires}; ask its admins to renew it" in message
    world.credential(subject, CredentialRole.DOCTOR, expires_ms=world.now_ms() + 100)
    credential = get_credential(world.ledger.state, subject.address, founder.org_id)
    assert credential is not None and credential.history_count == 2
    assert credential_history(world.ledger.state, credential)[-1].action == "renewed"
    assert valid_credential(world.ledger.state, subject.address, DOCTOR, world.now_ms())


def test_an_expiry_in_the_past_is_refused(
    world: World, founder: OrgKeys, subject: AccountKeys
) -> None:
    args = IssueArgs(subject.address, CredentialRole.DOCTOR, "Dr Late", world.now_ms())
    message = world.refused(founder.admin, "credentials.issue", args, "invalid_argument")
    assert "is not after the block time" in message


def test_suspend_and_reinstate(world: World, founder: OrgKeys, subject: AccountKeys) -> None:
    world.credential(subject, CredentialRole.DOCTOR)
    world.ok(
        founder.admin, "credentials.suspend", CredentialActionArgs(subject.address, "under review")
    )
    message = not_credentialed(world, subject)
    assert "was suspended by" in message and "(under review)" in message
    assert "ask its admins to reinstate it" in message
    world.refused(
        founder.admin,
        "credentials.suspend",
        CredentialActionArgs(subject.address, ""),
        "invalid_argument",
    )
    world.ok(founder.admin, "credentials.reinstate", CredentialActionArgs(subject.address, "ok"))
    assert valid_credential(world.ledger.state, subject.address, DOCTOR, world.now_ms())
    credential = get_credential(world.ledger.state, subject.address, founder.org_id)
    assert credential is not None
    actions = [e.action for e in credential_history(world.ledger.state, credential)]
    assert actions == ["issued", "suspended", "reinstated"]


def test_a_revoked_credential_is_final(
    world: World, founder: OrgKeys, subject: AccountKeys
) -> None:
    world.credential(subject, CredentialRole.DOCTOR)
    world.ok(founder.admin, "credentials.revoke", CredentialActionArgs(subject.address, "fraud"))
    message = not_credentialed(world, subject)
    assert "was revoked by" in message and "(fraud)" in message
    args = IssueArgs(subject.address, CredentialRole.DOCTOR, "Dr Again", 0)
    message = world.refused(founder.admin, "credentials.issue", args, "invalid_argument")
    assert "a revoked credential is final" in message
    world.refused(
        founder.admin,
        "credentials.reinstate",
        CredentialActionArgs(subject.address, ""),
        "invalid_argument",
    )


def test_another_organisation_cannot_touch_a_credential(
    world: World, second: OrgKeys, subject: AccountKeys
) -> None:
    world.credential(subject, CredentialRole.DOCTOR)
    message = world.refused(
        second.admin,
        "credentials.revoke",
        CredentialActionArgs(subject.address, ""),
        "invalid_argument",
    )
    assert "'north-clinic' has issued no credential" in message
    world.refused(
        subject,
        "credentials.suspend",
        CredentialActionArgs(subject.address, ""),
        "not_an_admin",
    )
    assert valid_credential(world.ledger.state, subject.address, DOCTOR, world.now_ms())


def test_a_credential_stops_when_its_organisation_leaves(
    validator: AccountKeys, rich: AccountKeys
) -> None:
    orgs = (make_org("org-a"), make_org("org-b"), make_org("org-c"))
    world = make_world(orgs, validator, rich)
    doctor = world.staff(CredentialRole.DOCTOR, org=orgs[2])
    world.credential(doctor, CredentialRole.NURSE, org=orgs[1])
    state = world.ledger.state
    assert valid_credential(state, doctor.address, DOCTOR, world.now_ms()) is not None
    leave = OrganisationSpec("org-c", "", OrgKind.HOSPITAL, (), b"", b"")
    world.ok(orgs[0].admin, "orgs.propose", ProposeArgs(ProposalAction.LEAVE, leave, "closed"))
    world.ok(orgs[1].admin, "orgs.approve", ApproveArgs(1))
    left_at = world.height
    assert valid_credential(state, doctor.address, DOCTOR, world.now_ms()) is None
    message = not_credentialed(world, doctor)
    assert f"organisation left the consortium at height {left_at}" in message
    nurse = valid_credential(state, doctor.address, CLINICIAN_ROLES, world.now_ms())
    assert nurse is not None and nurse.org_id == "org-b"
    credential = get_credential(state, doctor.address, "org-c")
    assert credential is not None and credential.status is CredentialStatus.ACTIVE


def test_credentials_from_several_organisations_are_listed_by_org_id(
    world: World, second: OrgKeys, subject: AccountKeys
) -> None:
    world.credential(subject, CredentialRole.RESEARCHER, org=second)
    world.credential(subject, CredentialRole.DOCTOR)
    listed = credentials_of(world.ledger.state, subject.address)
    assert [c.org_id for c in listed] == ["north-clinic", "st-mary"]
    assert [c.subject for c in staff_of(world.ledger.state, "north-clinic")] == [subject.address]
