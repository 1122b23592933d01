"""Membership proposals: an organisation joins, is updated or leaves when at least
two thirds (rounded up) of the member organisations approve, one approval per
organisation by any of its admins; the proposer's organisation approves by
proposing. The approval that reaches the threshold executes the proposal in the same
transaction. An open proposal lapses `proposal_blocks` after it was made; the
proposal, its approvals and its outcome stay in state as the audit trail.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from medchain.app._context import Call, Methods, make_event
from medchain.app._errors import InvalidArgument, ProposalError
from medchain.app._orgs import (
    OrganisationSpec,
    admit,
    amend,
    check_account_free,
    check_admins_free,
    check_spec,
    expel,
    get_organisation,
    member_organisations,
    require_admin,
    require_member,
)
from medchain.app._state import State, load, save
from medchain.types import Event

MAX_REASON_CHARS = 512


class ProposalAction(enum.StrEnum):
    JOIN = "join"
    UPDATE = "update"
    LEAVE = "leave"


class ProposalStatus(enum.StrEnum):
    OPEN = "open"
    PASSED = "passed"
    LAPSED = "lapsed"


@dataclass(frozen=True, slots=True)
class ProposeArgs:
    action: ProposalAction
    spec: OrganisationSpec
    """LEAVE reads only `spec.org_id`."""
    reason: str


@dataclass(frozen=True, slots=True)
class ApproveArgs:
    proposal_id: int


@dataclass(frozen=True, slots=True)
class Approval:
    org_id: str
    admin: bytes
    """Address of the admin who signed it."""
    height: int
    tx_id: bytes


@dataclass(frozen=True, slots=True)
class Proposal:
    proposal_id: int
    action: ProposalAction
    spec: OrganisationSpec
    reason: str
    proposer: bytes
    proposer_org: str
    created_height: int
    lapses_height: int
    """The first height at which it can no longer pass."""
    approvals: tuple[Approval, ...]
    """In order of arrival."""
    status: ProposalStatus
    decided_height: int
    """0 while open."""


@dataclass(frozen=True, slots=True)
class _OpenProposals:
    ids: tuple[int, ...]


_COUNT_KEY = b"prop/n"
_OPEN_KEY = b"props/open"


def _proposal_key(proposal_id: int) -> bytes:
    return b"prop/" + proposal_id.to_bytes(8, "big")


def approval_threshold(member_count: int) -> int:
    """⌈2n/3⌉ approvals of n member organisations."""
    return (2 * member_count + 2) // 3


def get_proposal(state: State, proposal_id: int) -> Proposal | None:
    return load(state, _proposal_key(proposal_id), Proposal)


def _count(state: State) -> int:
    raw = state.get(_COUNT_KEY)
    return int.from_bytes(raw, "big") if raw else 0


def proposals(state: State) -> list[Proposal]:
    """Every proposal, by id."""
    found = [get_proposal(state, pid) for pid in range(1, _count(state) + 1)]
    return [p for p in found if p is not None]


def _open_ids(state: State) -> tuple[int, ...]:
    index = load(state, _OPEN_KEY, _OpenProposals)
    return index.ids if index is not None else ()


def _set_open_ids(state: State, ids: tuple[int, ...]) -> None:
    if ids:
        save(state, _OPEN_KEY, _OpenProposals(tuple(sorted(ids))))
    else:
        state.delete(_OPEN_KEY)


def _check_target(state: State, action: ProposalAction, spec: OrganisationSpec) -> None:
    """The proposal could pass now: JOIN a new id, UPDATE or LEAVE a member."""
    if action is ProposalAction.JOIN:
        check_spec(spec)
        if get_organisation(state, spec.org_id) is not None:
            raise ProposalError(
                f"an organisation {spec.org_id!r} already exists (or existed); "
                "choose another id, or propose an update"
            )
    else:
        require_member(state, spec.org_id)
    if action is ProposalAction.LEAVE:
        if len(member_organisations(state)) <= 1:
            raise ProposalError(
                f"{spec.org_id!r} is the last member organisation; the consortium "
                "needs at least one, so it cannot leave"
            )
        return
    check_spec(spec)
    check_admins_free(state, spec)
    check_account_free(state, spec)


def propose(state: State, call: Call, args: ProposeArgs) -> None:
    org = require_admin(state, call.sender)
    if len(args.reason) > MAX_REASON_CHARS:
        raise InvalidArgument(f"a reason is limited to {MAX_REASON_CHARS} characters")
    _check_target(state, args.action, args.spec)
    for pid in _open_ids(state):
        other = get_proposal(state, pid)
        if other is not None and other.spec.org_id == args.spec.org_id:
            raise ProposalError(
                f"proposal {pid} about {args.spec.org_id!r} is still open; approve it "
                "or wait until it lapses at height "
                f"{other.lapses_height}"
            )
    height = call.block.height
    proposal = Proposal(
        proposal_id=_count(state) + 1,
        action=args.action,
        spec=args.spec,
        reason=args.reason,
        proposer=call.sender,
        proposer_org=org.org_id,
        created_height=height,
        lapses_height=height + call.block.params.proposal_blocks,
        approvals=(Approval(org.org_id, call.sender, height, call.tx_id),),
        status=ProposalStatus.OPEN,
        decided_height=0,
    )
    state.set(_COUNT_KEY, proposal.proposal_id.to_bytes(8, "big"))
    _set_open_ids(state, (*_open_ids(state), proposal.proposal_id))
    call.emit(
        "org.proposed",
        proposal=proposal.proposal_id,
        action=args.action.value,
        org=args.spec.org_id,
        by=org.org_id,
    )
    _settle(state, call, proposal)


def approve(state: State, call: Call, args: ApproveArgs) -> None:
    org = require_admin(state, call.sender)
    proposal = get_proposal(state, args.proposal_id)
    if proposal is None:
        raise ProposalError(f"there is no proposal {args.proposal_id}")
    if proposal.status is not ProposalStatus.OPEN:
        raise ProposalError(
            f"proposal {args.proposal_id} is {proposal.status.value} "
            f"(at height {proposal.decided_height}); make a new proposal"
        )
    if call.block.height >= proposal.lapses_height:
        raise ProposalError(
            f"proposal {args.proposal_id} lapsed at height {proposal.lapses_height}; "
            "make a new proposal"
        )
    if any(a.org_id == org.org_id for a in proposal.approvals):
        raise ProposalError(
            f"{org.org_id!r} has already approved proposal {args.proposal_id}; "
            "each organisation approves once"
        )
    approval = Approval(org.org_id, call.sender, call.block.height, call.tx_id)
    proposal = replace(proposal, approvals=(*proposal.approvals, approval))
    call.emit("org.approved", proposal=proposal.proposal_id, org=org.org_id, admin=call.sender)
    _settle(state, call, proposal)


def member_approvals(state: State, proposal: Proposal) -> int:
    """Approvals that count now: those of current member organisations."""
    members = {org.org_id for org in member_organisations(state)}
    return len({a.org_id for a in proposal.approvals if a.org_id in members})


def _settle(state: State, call: Call, proposal: Proposal) -> None:
    """Store the proposal; execute it if its approvals reach the threshold now."""
    needed = approval_threshold(len(member_organisations(state)))
    if member_approvals(state, proposal) >= needed:
        _execute(state, call, proposal)
        proposal = replace(proposal, status=ProposalStatus.PASSED, decided_height=call.block.height)
        _set_open_ids(state, tuple(i for i in _open_ids(state) if i != proposal.proposal_id))
    save(state, _proposal_key(proposal.proposal_id), proposal)


def _execute(state: State, call: Call, proposal: Proposal) -> None:
    _check_target(state, proposal.action, proposal.spec)
    height = call.block.height
    org_id = proposal.spec.org_id
    if proposal.action is ProposalAction.JOIN:
        org = admit(state, proposal.spec, height)
        call.emit("org.joined", proposal=proposal.proposal_id, org=org_id, account=org.account)
    elif proposal.action is ProposalAction.UPDATE:
        org = amend(state, proposal.spec, height)
        call.emit("org.updated", proposal=proposal.proposal_id, org=org_id, account=org.account)
    else:
        expel(state, org_id, height)
        call.emit("org.left", proposal=proposal.proposal_id, org=org_id)


def lapse_proposals(state: State, height: int) -> list[Event]:
    """At the start of a block: open proposals whose time is up lapse. Reads one key
    (and writes nothing) while no proposal is due."""
    due = []
    for pid in _open_ids(state):
        proposal = get_proposal(state, pid)
        if proposal is not None and proposal.lapses_height <= height:
            due.append(proposal)
    if not due:
        return []
    events = []
    for proposal in due:
        lapsed = replace(proposal, status=ProposalStatus.LAPSED, decided_height=height)
        save(state, _proposal_key(proposal.proposal_id), lapsed)
        events.append(
            make_event("org.lapsed", proposal=proposal.proposal_id, org=proposal.spec.org_id)
        )
    gone = {p.proposal_id for p in due}
    _set_open_ids(state, tuple(i for i in _open_ids(state) if i not in gone))
    return events


METHODS: Methods = {
    "orgs.propose": (ProposeArgs, propose),
    "orgs.approve": (ApproveArgs, approve),
}
