"""AFBFT's fresh proposals are orderings: each candidate sends its transactions in
order, unexecuted, and every validator builds only the winning draw's block itself.
These tests hold the engine to that: one build per height, the same block everywhere,
header-level faults accused, a split candidate caught, a restart replaying an ordering."""

from __future__ import annotations

import dataclasses

import pytest

from medchain.consensus import (
    BftEngine,
    EngineKind,
    Kind,
    Ordering,
    Proposal,
    ProposalComing,
    RoundChange,
    Start,
    TimerKind,
    Vote,
    afbft_alpha,
    block_id,
    proposal_digest,
    sign,
    unwire,
    verified_vrf_output,
    wire,
)
from medchain.consensus._messages import AccusationMessage, signed_proposal
from medchain.crypto import verify_signature
from medchain.types import (
    EquivocationEvidence,
    InvalidProposalEvidence,
    proposal_signing_bytes,
)

from .harness import CHAIN, Net, Solo
from .test_engine_rules import ME, block_of, close_window, draw, votes

FAST = {"block_interval_ms": 50, "round_timeout_ms": 400, "proposal_window_ms": 40}


def ordering(
    solo: Solo, who: int, round_: int = 0, time_ms: int = 5, parent: bytes | None = None
) -> Proposal:
    """Candidate `who`'s signed ordering at height 1 (no transactions: the toy app has
    none; `LedgerApp`'s tests build orderings that hold some)."""
    tip = block_id(solo.app.last_block()) if parent is None else parent
    content = Ordering(tip, time_ms, ())
    key = solo.keys[who]
    return sign(CHAIN, Proposal(1, round_, content, draw(solo, who), (), key.public_key), key)


def ranked(solo: Solo, candidates: tuple[int, ...]) -> list[int]:
    """The candidates by their height-1 draw, lowest (the winner) first."""
    alpha = afbft_alpha(solo.app.blocks[0], 1)

    def output(who: int) -> bytes:
        found = verified_vrf_output(solo.keys[who].public_key, alpha, draw(solo, who))
        assert found is not None
        return found

    return sorted(candidates, key=lambda w: (output(w), solo.keys[w].public_key))


def without_me(solo: Solo) -> None:
    """Seat the three other validators only: the engine under test just votes."""
    solo.app.candidates = tuple(k.public_key for i, k in enumerate(solo.keys) if i != ME)


def test_a_candidate_proposes_an_ordering_and_only_the_winner_is_built() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    (own,) = [p for p in solo.start() if isinstance(p, Proposal)]
    assert isinstance(own.block, Ordering)
    assert own.block.parent == block_id(solo.app.last_block())
    assert own.block.time_ms > solo.app.last_block().header.time_ms
    made = [own] + [ordering(solo, who, time_ms=5 + who) for who in (0, 1, 2)]
    for sent in made[1:]:
        solo.receive(sent)
    (prepare,) = votes(solo.sent, Kind.PREPARE, 0)
    state = solo.engine._state
    assert state is not None
    winner = next(p for p in made if p.proposer == state.plan.vrf_ranking()[0])
    assert list(state.built) == [proposal_digest(winner)]  # one block built, the winner's
    built = block_of(solo, winner)
    assert prepare.block_hash == block_id(built)
    assert built.header.proposer == solo.keys[ranked(solo, (0, 1, 2, ME))[0]].address
    assert built.header.vrf_proof == winner.vrf_proof


def test_every_honest_validator_builds_and_commits_the_same_block() -> None:
    net = Net(4, EngineKind.AFBFT, **FAST)
    net.start()
    net.run(until_ms=3_000)
    assert min(net.heights()) >= 3
    net.assert_agreement()
    for engine in net.engines:
        assert engine.stats.invalid_proposals == 0 and engine.stats.equivocations == 0


@pytest.mark.parametrize("fault", ["parent", "time"])
def test_an_ordering_that_cannot_extend_the_tip_is_accused(fault: str) -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    without_me(solo)
    solo.start()
    low, second, third = ranked(solo, (0, 1, 2))
    bad = (
        ordering(solo, low, parent=b"\x09" * 32)
        if fault == "parent"
        else ordering(solo, low, time_ms=solo.app.last_block().header.time_ms)
    )
    for sent in (bad, ordering(solo, second, time_ms=6), ordering(solo, third, time_ms=7)):
        solo.receive(sent)
    (accusation,) = [m for m in solo.sent if isinstance(m, AccusationMessage)]
    assert accusation.block_hash == proposal_digest(bad)
    (prepare,) = votes(solo.sent, Kind.PREPARE, 0)  # the next draw wins instead
    state = solo.engine._state
    assert state is not None
    assert block_of(solo, state.at(0).candidates[solo.keys[second].public_key]).header.proposer == (
        solo.keys[second].address
    )
    assert prepare.block_hash == block_id(
        block_of(solo, state.at(0).candidates[solo.keys[second].public_key])
    )
    # a quorum of accusations makes evidence the chain can check
    for who in (second, third):
        key = solo.keys[who]
        solo.receive(
            sign(CHAIN, AccusationMessage(1, 0, proposal_digest(bad), key.public_key), key)
        )
    (evidence,) = solo.evidence
    assert isinstance(evidence, InvalidProposalEvidence)
    assert evidence.proposal == signed_proposal(bad)


def test_an_ordering_with_a_draw_that_is_not_its_candidates_is_refused() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    without_me(solo)
    solo.start()
    key = solo.keys[0]
    stolen = Proposal(
        1, 0, Ordering(block_id(solo.app.last_block()), 5, ()), draw(solo, 1), (), key.public_key
    )
    solo.receive(sign(CHAIN, stolen, key))
    close_window(solo, 0)
    assert votes(solo.sent, Kind.PREPARE, 0) == []
    state = solo.engine._state
    assert state is not None and state.built == {}
    assert solo.engine.stats.dropped_bad_signature == 1


def test_a_candidate_sending_two_orderings_is_caught_and_excluded() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    without_me(solo)
    solo.start()
    low, second, third = ranked(solo, (0, 1, 2))
    first, other = ordering(solo, low, time_ms=5), ordering(solo, low, time_ms=6)
    solo.receive(first)
    solo.receive(other)
    (evidence,) = solo.evidence
    assert isinstance(evidence, EquivocationEvidence)
    assert {evidence.first.block_hash, evidence.second.block_hash} == {
        proposal_digest(first),
        proposal_digest(other),
    }
    for signed in (evidence.first, evidence.second):  # what the chain checks
        data = proposal_signing_bytes(CHAIN, signed.height, signed.round, signed.block_hash)
        assert verify_signature(solo.keys[low].public_key, data, signed.signature)
    for who in (second, third):
        solo.receive(ordering(solo, who, time_ms=7))
    (prepare,) = votes(solo.sent, Kind.PREPARE, 0)  # the lowest draw is excluded
    state = solo.engine._state
    assert state is not None and solo.keys[low].public_key in state.excluded
    assert prepare.block_hash == block_id(
        block_of(solo, state.at(0).candidates[solo.keys[second].public_key])
    )


def test_a_split_ordering_is_caught_from_the_round_changes() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    without_me(solo)
    solo.start()
    low, second, third = ranked(solo, (0, 1, 2))
    sent = [ordering(solo, who, time_ms=5 + who) for who in (low, second, third)]
    for made in sent:
        solo.receive(made)
    (change,) = [m for m in solo.fire(TimerKind.ROUND, 0) if isinstance(m, RoundChange)]
    assert change.prepared_proposal == (signed_proposal(sent[0]),)  # the signed ordering
    other = ordering(solo, low, time_ms=50)  # what `low` sent validator `second`
    key = solo.keys[second]
    shown = (signed_proposal(other),)
    solo.receive(sign(CHAIN, RoundChange(1, 1, (), key.public_key, b"", shown), key))
    (evidence,) = solo.evidence
    assert isinstance(evidence, EquivocationEvidence)
    assert evidence.first == signed_proposal(sent[0]) and evidence.second == shown[0]
    state = solo.engine._state
    assert state is not None and solo.keys[low].public_key in state.excluded


def test_a_restart_replays_the_ordering_and_the_prepare_it_signed() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    (own,) = [p for p in solo.start() if isinstance(p, Proposal)]
    others = [ordering(solo, who, time_ms=5 + who) for who in (0, 1, 2)]
    for made in others:
        solo.receive(made)
    (prepare,) = votes(solo.sent, Kind.PREPARE, 0)
    logged = [wire(m) for m in solo.sent if isinstance(m, Proposal | Vote)]
    assert unwire(logged[0]) == own and isinstance(own.block, Ordering)

    solo.engine = BftEngine(solo.engine.config, solo.keys[ME], solo.app)
    solo.sent.clear()
    solo.feed(Start(solo.now))
    for data in logged:  # the WAL's bytes, as the node replays them
        solo.receive(unwire(data))
    assert solo.fire(TimerKind.NEW_ROUND, 0) == []  # its ordering is made: none other
    for made in others:
        solo.receive(made)
    close_window(solo, 0)
    assert votes(solo.sent, Kind.PREPARE, 0) == [prepare]  # the same bytes, nothing new
    assert [m for m in solo.sent if isinstance(m, Proposal)] == []
    state = solo.engine._state
    assert state is not None
    mine = solo.keys[ME].public_key
    assert [d for d, book in state.at(0).prepares.items() if mine in book] == [prepare.block_hash]
    # the others' prepares complete the quorum: the replayed node commits with them
    for who in (0, 1):
        key = solo.keys[who]
        solo.receive(sign(CHAIN, Vote(Kind.PREPARE, 1, 0, prepare.block_hash, key.public_key), key))
    (commit,) = votes(solo.sent, Kind.COMMIT, 0)
    assert commit.block_hash == prepare.block_hash


def test_orderings_are_refused_outside_afbft() -> None:
    solo = Solo(EngineKind.PBFT, me=ME)
    solo.start()
    key = solo.keys[0]
    content = Ordering(block_id(solo.app.last_block()), 5, ())
    solo.receive(sign(CHAIN, Proposal(1, 0, content, b"", (), key.public_key), key))
    assert votes(solo.sent, Kind.PREPARE, 0) == []
    assert solo.engine.stats.dropped_malformed == 1


def test_an_ordering_travels_and_is_signed_as_its_id() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    made = ordering(solo, 0)
    assert unwire(wire(made)) == made
    assert isinstance(made.block, Ordering)
    changed = dataclasses.replace(made, block=dataclasses.replace(made.block, time_ms=9))
    assert proposal_digest(changed) != proposal_digest(made)
    data = proposal_signing_bytes(CHAIN, 1, 0, proposal_digest(made))
    assert verify_signature(solo.keys[0].public_key, data, made.signature)


# -- a proposal the driver holds while it checks it -------------------------------------


def three_seated() -> tuple[Solo, list[int]]:
    """An engine that only votes, at height 1, and the three seated candidates by draw."""
    solo = Solo(EngineKind.AFBFT, me=ME, **FAST)
    without_me(solo)
    solo.start()
    return solo, ranked(solo, (0, 1, 2))


def coming(solo: Solo, who: int) -> list[object]:
    """The driver tells the engine it holds `who`'s ordering, still being checked."""
    return solo.feed(ProposalComing(solo.now, 1, 0, solo.keys[who].public_key))


def test_the_window_waits_for_a_proposal_the_driver_holds_and_ranks_it_in() -> None:
    solo, (low, second, third) = three_seated()
    solo.receive(ordering(solo, second))
    solo.receive(ordering(solo, third))
    coming(solo, low)
    assert votes(close_window(solo, 0), Kind.PREPARE, 0) == []  # the deadline passed: waits
    lowest = ordering(solo, low)
    (prepare,) = votes(solo.receive(lowest), Kind.PREPARE, 0)  # ranked the moment it is in
    assert prepare.block_hash == block_id(block_of(solo, lowest))


def test_without_word_of_it_the_window_closes_on_the_proposals_in() -> None:
    solo, (_, second, third) = three_seated()
    best_in = ordering(solo, second)
    solo.receive(best_in)
    solo.receive(ordering(solo, third))
    (prepare,) = votes(close_window(solo, 0), Kind.PREPARE, 0)
    assert prepare.block_hash == block_id(block_of(solo, best_in))


def test_the_wait_for_a_proposal_said_to_be_coming_ends_at_half_the_round_timeout() -> None:
    solo, (low, second, third) = three_seated()
    opened = solo.now  # the window opened as the height started
    best_in = ordering(solo, second)
    solo.receive(best_in)
    solo.receive(ordering(solo, third))
    coming(solo, low)  # and it never comes
    prepares: list[Vote] = []
    while not prepares:
        prepares = votes(close_window(solo, 0), Kind.PREPARE, 0)
    assert solo.now - opened <= FAST["round_timeout_ms"] // 2 + FAST["proposal_window_ms"]
    assert prepares[0].block_hash == block_id(block_of(solo, best_in))


def test_word_of_a_proposal_from_no_seated_candidate_changes_nothing() -> None:
    solo, (low, second, _) = three_seated()
    best_in = ordering(solo, low)
    solo.receive(best_in)
    solo.receive(ordering(solo, second))
    coming(solo, ME)  # not seated this height
    (prepare,) = votes(close_window(solo, 0), Kind.PREPARE, 0)
    assert prepare.block_hash == block_id(block_of(solo, best_in))
