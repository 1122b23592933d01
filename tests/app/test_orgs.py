"""Organisations: founding ones from the genesis, membership proposals (join, update,
leave) passed by two thirds of the member organisations, and attestations."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.app import (
    ApproveArgs,
    AttestArgs,
    OrganisationSpec,
    OrgKind,
    ProposalAction,
    ProposalStatus,
    ProposeArgs,
    Role,
    approval_threshold,
    attestations_of,
    get_identity,
    get_organisation,
    get_proposal,
    is_verified_patient,
    member_organisations,
    org_of_account,
    org_of_admin,
    organisations,
    proposals,
    require_admin,
)
from medchain.app import NotAnAdmin as NotAnAdminError
from medchain.crypto import AccountKeys
from medchain.types import ChainParams
from tests.app.conftest import OrgKeys, World, make_org, make_world

KINDS = ("hospital", "clinic", "research", "insurer")


@pytest.fixture
def members() -> tuple[OrgKeys, ...]:
    return tuple(make_org(f"org-{i}", kind) for i, kind in enumerate(KINDS))


@pytest.fixture
def consortium(members: tuple[OrgKeys, ...], validator: AccountKeys, rich: AccountKeys) -> World:
    """Four member organisations: a proposal needs three of them."""
    return make_world(members, validator, rich, ChainParams(proposal_blocks=5))


def spec_of(org: OrgKeys, name: str = "", kind: OrgKind = OrgKind.LABORATORY) -> OrganisationSpec:
    return OrganisationSpec(
        org.org_id,
        name or f"The {org.org_id}",
        kind,
        (org.admin.public_key,),
        org.account.public_key,
        org.account.encryption_public_key,
    )


def leave_spec(org_id: str) -> OrganisationSpec:
    return OrganisationSpec(org_id, "", OrgKind.HOSPITAL, (), b"", b"")


def propose(world: World, by: OrgKeys, action: ProposalAction, spec: OrganisationSpec) -> int:
    world.ok(by.admin, "orgs.propose", ProposeArgs(action, spec, "why not"))
    return proposals(world.ledger.state)[-1].proposal_id


def approve(world: World, by: OrgKeys, pid: int) -> None:
    world.ok(by.admin, "orgs.approve", ApproveArgs(pid))


def test_the_genesis_founds_its_organisations_with_their_accounts(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    state = consortium.ledger.state
    assert [o.org_id for o in member_organisations(state)] == [m.org_id for m in members]
    for keys in members:
        org = get_organisation(state, keys.org_id)
        assert org is not None and org.member and org.joined_height == 0
        assert org.admins == (keys.admin.address,)
        assert org.account == keys.account.address
        assert org_of_admin(state, keys.admin.address) == org
        assert org_of_account(state, keys.account.address) == org
        identity = get_identity(state, keys.account.address)
        assert identity is not None and identity.role is Role.INSTITUTION
        assert identity.encryption_key == keys.account.encryption_public_key
    assert org_of_admin(state, members[0].account.address) is None
    with pytest.raises(NotAnAdminError, match="not an admin of a member organisation"):
        require_admin(state, AccountKeys.generate().address)


@pytest.mark.parametrize(("n", "needed"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (7, 5)])
def test_the_threshold_is_two_thirds_rounded_up(n: int, needed: int) -> None:
    assert approval_threshold(n) == needed


def test_a_join_passes_with_two_thirds_and_opens_the_account(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    lab = make_org("city-lab", "laboratory")
    pid = propose(consortium, members[0], ProposalAction.JOIN, spec_of(lab))
    approve(consortium, members[1], pid)
    state = consortium.ledger.state
    proposal = get_proposal(state, pid)
    assert proposal is not None and proposal.status is ProposalStatus.OPEN
    assert get_organisation(state, "city-lab") is None
    receipt = consortium.ok(members[2].admin, "orgs.approve", ApproveArgs(pid))
    assert [e.kind for e in receipt.events] == ["org.approved", "org.joined"]
    org = get_organisation(state, "city-lab")
    assert org is not None and org.member and org.kind is OrgKind.LABORATORY
    assert org.joined_height == consortium.height
    proposal = get_proposal(state, pid)
    assert proposal is not None and proposal.status is ProposalStatus.PASSED
    assert [a.org_id for a in proposal.approvals] == ["org-0", "org-1", "org-2"]
    assert proposal.decided_height == consortium.height
    identity = get_identity(state, lab.account.address)
    assert identity is not None and identity.role is Role.INSTITUTION
    assert org_of_admin(state, lab.admin.address) == org
    assert len(member_organisations(state)) == 5


def test_a_proposal_without_two_thirds_changes_nothing(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    lab = make_org("city-lab")
    pid = propose(consortium, members[0], ProposalAction.JOIN, spec_of(lab))
    message = consortium.refused(
        members[0].admin, "orgs.approve", ApproveArgs(pid), "proposal_error"
    )
    assert "'org-0' has already approved proposal 1" in message
    approve(consortium, members[1], pid)
    assert get_organisation(consortium.ledger.state, "city-lab") is None
    assert get_identity(consortium.ledger.state, lab.account.address) is None


def test_a_non_admin_can_neither_propose_nor_approve(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    pid = propose(consortium, members[0], ProposalAction.JOIN, spec_of(make_org("city-lab")))
    outsider = AccountKeys.generate()
    args = ProposeArgs(ProposalAction.LEAVE, leave_spec("org-1"), "")
    message = consortium.refused(outsider, "orgs.propose", args, "not_an_admin")
    assert "is not an admin of a member organisation" in message
    consortium.refused(outsider, "orgs.approve", ApproveArgs(pid), "not_an_admin")
    consortium.refused(members[1].account, "orgs.approve", ApproveArgs(pid), "not_an_admin")


def test_an_open_proposal_lapses_and_can_no_longer_pass(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    pid = propose(consortium, members[0], ProposalAction.JOIN, spec_of(make_org("city-lab")))
    proposal = get_proposal(consortium.ledger.state, pid)
    assert proposal is not None and proposal.lapses_height == consortium.height + 5
    consortium.empty_blocks(5)
    proposal = get_proposal(consortium.ledger.state, pid)
    assert proposal is not None and proposal.status is ProposalStatus.LAPSED
    message = consortium.refused(
        members[1].admin, "orgs.approve", ApproveArgs(pid), "proposal_error"
    )
    assert "proposal 1 is lapsed" in message
    assert get_organisation(consortium.ledger.state, "city-lab") is None


def test_proposals_that_could_not_pass_are_refused(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    admin = members[0].admin
    taken = spec_of(make_org("org-1"))
    message = consortium.refused(
        admin,
        "orgs.propose",
        ProposeArgs(ProposalAction.JOIN, taken, ""),
        "proposal_error",
    )
    assert "already exists" in message
    reused = spec_of(make_org("city-lab"))
    reused = OrganisationSpec(
        reused.org_id,
        reused.name,
        reused.kind,
        (members[1].admin.public_key,),
        reused.public_key,
        reused.encryption_key,
    )
    message = consortium.refused(
        admin,
        "orgs.propose",
        ProposeArgs(ProposalAction.JOIN, reused, ""),
        "invalid_argument",
    )
    assert "already an admin of 'org-1'" in message
    bad_id = spec_of(make_org("Bad_Id"))
    consortium.refused(
        admin,
        "orgs.propose",
        ProposeArgs(ProposalAction.JOIN, bad_id, ""),
        "invalid_argument",
    )
    gone = ProposeArgs(ProposalAction.LEAVE, leave_spec("no-such-org"), "")
    consortium.refused(admin, "orgs.propose", gone, "unknown_organisation")


def test_an_account_key_already_registered_cannot_become_an_organisation(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    lab = make_org("city-lab")
    consortium.register(lab.account, Role.PATIENT)
    args = ProposeArgs(ProposalAction.JOIN, spec_of(lab), "")
    message = consortium.refused(members[0].admin, "orgs.propose", args, "already_registered")
    assert "give the organisation a fresh account key" in message


def test_one_open_proposal_per_organisation(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    lab = make_org("city-lab")
    propose(consortium, members[0], ProposalAction.JOIN, spec_of(lab))
    args = ProposeArgs(ProposalAction.JOIN, spec_of(make_org("city-lab")), "")
    message = consortium.refused(members[1].admin, "orgs.propose", args, "proposal_error")
    assert "proposal 1 about 'city-lab' is still open" in message


def test_an_update_changes_name_kind_admins_and_account_but_not_the_id(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    target = members[3]
    renewed = make_org(target.org_id, "regulator")
    pid = propose(
        consortium,
        members[0],
        ProposalAction.UPDATE,
        spec_of(renewed, "Health Regulator", OrgKind.REGULATOR),
    )
    approve(consortium, members[1], pid)
    approve(consortium, members[2], pid)
    state = consortium.ledger.state
    org = get_organisation(state, target.org_id)
    assert org is not None and org.name == "Health Regulator"
    assert org.kind is OrgKind.REGULATOR
    assert org.admins == (renewed.admin.address,) and org.account == renewed.account.address
    assert org_of_admin(state, target.admin.address) is None
    assert org_of_account(state, target.account.address) is None
    assert org_of_account(state, renewed.account.address) == org


def test_a_leaving_organisation_stays_in_state_without_its_powers(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    leaving = members[3]
    pid = propose(consortium, members[0], ProposalAction.LEAVE, leave_spec(leaving.org_id))
    approve(consortium, members[1], pid)
    receipt = consortium.ok(members[2].admin, "orgs.approve", ApproveArgs(pid))
    assert [e.kind for e in receipt.events] == ["org.approved", "org.left"]
    state = consortium.ledger.state
    org = get_organisation(state, leaving.org_id)
    assert org is not None and not org.member and org.left_height == consortium.height
    assert leaving.org_id in [o.org_id for o in organisations(state)]
    assert leaving.org_id not in [o.org_id for o in member_organisations(state)]
    assert org_of_admin(state, leaving.admin.address) is None
    assert org_of_account(state, leaving.account.address) is None
    args = ProposeArgs(ProposalAction.JOIN, spec_of(make_org("city-lab")), "")
    consortium.refused(leaving.admin, "orgs.propose", args, "not_an_admin")


def test_the_last_member_cannot_leave(world: World, founder: OrgKeys) -> None:
    args = ProposeArgs(ProposalAction.LEAVE, leave_spec(founder.org_id), "closing")
    message = world.refused(founder.admin, "orgs.propose", args, "proposal_error")
    assert "is the last member organisation" in message


def test_alone_the_founder_admits_by_proposing(world: World, founder: OrgKeys) -> None:
    lab = make_org("city-lab")
    receipt = world.ok(
        founder.admin, "orgs.propose", ProposeArgs(ProposalAction.JOIN, spec_of(lab), "")
    )
    assert [e.kind for e in receipt.events] == ["org.proposed", "org.joined"]
    assert get_organisation(world.ledger.state, "city-lab") is not None


def test_an_admin_attests_a_patient_while_its_organisation_is_a_member(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    patient = AccountKeys.generate()
    consortium.register(patient, Role.PATIENT)
    state = consortium.ledger.state
    assert not is_verified_patient(state, patient.address)
    outsider = AccountKeys.generate()
    consortium.refused(outsider, "orgs.attest", AttestArgs(patient.address), "not_an_admin")
    consortium.ok(members[3].admin, "orgs.attest", AttestArgs(patient.address))
    assert [a.org_id for a in attestations_of(state, patient.address)] == ["org-3"]
    assert is_verified_patient(state, patient.address)
    message = consortium.refused(
        members[3].admin,
        "orgs.attest",
        AttestArgs(patient.address),
        "invalid_argument",
    )
    assert "already attests" in message
    pid = propose(consortium, members[0], ProposalAction.LEAVE, leave_spec("org-3"))
    approve(consortium, members[1], pid)
    approve(consortium, members[2], pid)
    assert not is_verified_patient(state, patient.address)


def test_an_attestation_can_be_withdrawn_only_by_its_organisation(
    consortium: World, members: tuple[OrgKeys, ...]
) -> None:
    patient = AccountKeys.generate()
    consortium.register(patient, Role.PATIENT)
    consortium.ok(members[0].admin, "orgs.attest", AttestArgs(patient.address))
    consortium.refused(
        members[1].admin,
        "orgs.unattest",
        AttestArgs(patient.address),
        "invalid_argument",
    )
    consortium.ok(members[0].admin, "orgs.unattest", AttestArgs(patient.address))
    assert attestations_of(consortium.ledger.state, patient.address) == []
    assert not is_verified_patient(consortium.ledger.state, patient.address)


def test_only_patients_are_attested(consortium: World, members: tuple[OrgKeys, ...]) -> None:
    consortium.refused(
        members[0].admin,
        "orgs.attest",
        AttestArgs(members[1].account.address),
        "wrong_role",
    )


_STEP = st.tuples(st.integers(0, 3), st.integers(0, 7), st.integers(0, 3))
"""(0: propose, else approve; acting admin: a founder's or a candidate's; target)."""


def _random_step(world: World, admins: list[AccountKeys], step: tuple[int, int, int]) -> None:
    """Propose (a candidate's JOIN, or a member's LEAVE) or approve an existing proposal."""
    kind, actor, target = step
    state = world.ledger.state
    if kind == 0:
        members = sorted(o.org_id for o in member_organisations(state))
        joining = actor % 2 == 0
        spec = _CANDIDATES[target] if joining else leave_spec(members[target % len(members)])
        action = ProposalAction.JOIN if joining else ProposalAction.LEAVE
        world.call(admins[actor], "orgs.propose", ProposeArgs(action, spec, ""))
    elif count := len(proposals(state)):
        world.call(admins[actor], "orgs.approve", ApproveArgs(target % count + 1))


_FOUNDERS = tuple(make_org(f"org-{i}", "clinic") for i in range(4))
_NEWCOMERS = tuple(make_org(f"new-{i}") for i in range(4))
_CANDIDATES = tuple(spec_of(org) for org in _NEWCOMERS)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(_STEP, min_size=1, max_size=16))
def test_no_proposal_passes_without_two_thirds_of_distinct_members(
    steps: list[tuple[int, int, int]],
) -> None:
    world = make_world(
        _FOUNDERS, AccountKeys.generate(), AccountKeys.generate(), ChainParams(proposal_blocks=8)
    )
    admins = [org.admin for org in (*_FOUNDERS, *_NEWCOMERS)]
    state = world.ledger.state
    for step in steps:
        members_before = {o.org_id for o in member_organisations(state)}
        _random_step(world, admins, step)
        for proposal in proposals(state):
            if proposal.status is ProposalStatus.PASSED and proposal.decided_height == world.height:
                approvers = {a.org_id for a in proposal.approvals} & members_before
                assert len(approvers) >= approval_threshold(len(members_before))
        assert len(member_organisations(state)) >= 1
