"""The engine's three safety rules, one test each, on one engine fed hand-made event
sequences (`Solo`): the test signs the other validators' messages and fires the
timers, and reads what the engine sends back.

1. A validator votes at most once per (height, round, phase), and only in its
   current round.
2. A round change carries the highest prepared certificate the validator holds.
3. A proposal above round 0 re-proposes the highest prepared block carried by the
   round changes that justify it; a proposal that does not is refused.
"""

from __future__ import annotations

import collections
import dataclasses

import pytest

from medchain.consensus import (
    BftEngine,
    EngineKind,
    Kind,
    Ordering,
    Proposal,
    RoundChange,
    Start,
    TimerKind,
    Vote,
    afbft_alpha,
    block_id,
    sign,
    verify,
)
from medchain.consensus._messages import PreparedCertificate
from medchain.crypto import address_from_public_key, vrf_prove
from medchain.types import Block, EquivocationEvidence

from .harness import CHAIN, Solo

ME = 3
"""The engine under test is validator 3 of 4; the quorum is 3, the weak quorum 2."""


# -- playing the other validators ------------------------------------------------------


def draw(solo: Solo, who: int) -> bytes:
    """Validator `who`'s AFBFT proof for height 1 (b"" under PBFT and DPoS)."""
    if solo.kind is not EngineKind.AFBFT:
        return b""
    return vrf_prove(solo.keys[who].signing_seed, afbft_alpha(solo.app.blocks[0], 1))


def make_block(solo: Solo, who: int, time_ms: int) -> Block:
    """A valid block at height 1 built by `who`; distinct times give distinct blocks."""
    return solo.app.propose(1, time_ms, solo.keys[who].public_key, draw(solo, who))


def block_of(solo: Solo, made: Proposal) -> Block:
    """The block a proposal stands for at the engine: its own, or the one the engine
    built from its AFBFT ordering."""
    if isinstance(made.block, Block):
        return made.block
    state = solo.engine._state
    built = state.block_of(made) if state is not None else None
    assert built is not None, "the engine has not built this ordering"
    return built


def proposal(
    solo: Solo, who: int, round_: int, block: Block, justification: tuple[RoundChange, ...] = ()
) -> Proposal:
    key = solo.keys[who]
    message = Proposal(1, round_, block, draw(solo, who), justification, key.public_key)
    return sign(CHAIN, message, key)


def vote(solo: Solo, who: int, kind: Kind, round_: int, digest: bytes, echo: bytes = b"") -> Vote:
    key = solo.keys[who]
    return sign(CHAIN, Vote(kind, 1, round_, digest, key.public_key, echo), key)


def prepared(solo: Solo, round_: int, block: Block, voters: tuple[int, ...]) -> PreparedCertificate:
    digest = block_id(block)
    prepares = tuple(vote(solo, v, Kind.PREPARE, round_, digest) for v in voters)
    return PreparedCertificate(round_, block, prepares)


def round_change(
    solo: Solo, who: int, round_: int, certs: tuple[PreparedCertificate, ...] = ()
) -> RoundChange:
    key = solo.keys[who]
    return sign(CHAIN, RoundChange(1, round_, certs, key.public_key), key)


def primary(solo: Solo, round_: int) -> int:
    """Who proposes `round_` under PBFT and DPoS (AFBFT: every candidate does)."""
    state = solo.engine._state
    assert state is not None
    key = state.plan.primary(round_)
    return next(i for i, k in enumerate(solo.keys) if k.public_key == key)


def other_proposer(solo: Solo, round_: int) -> int:
    """A validator other than the engine whose proposal for `round_` is in turn."""
    return 0 if solo.kind is EngineKind.AFBFT else primary(solo, round_)


def close_window(solo: Solo, round_: int) -> list[object]:
    """AFBFT prepares when its proposal window closes; the others need no wait."""
    if solo.kind is EngineKind.AFBFT and (TimerKind.PROPOSAL_WINDOW, round_) in solo.timers:
        return solo.fire(TimerKind.PROPOSAL_WINDOW, round_)
    return []


def votes(messages: list[object], kind: Kind, round_: int) -> list[Vote]:
    return [m for m in messages if isinstance(m, Vote) and (m.kind, m.round) == (kind, round_)]


def assert_one_vote_per_step(solo: Solo) -> collections.Counter[tuple[Kind, int, int]]:
    steps = collections.Counter(
        (m.kind, m.height, m.round) for m in solo.sent if isinstance(m, Vote)
    )
    assert all(count == 1 for count in steps.values()), steps
    return steps


def prepare_round_zero(solo: Solo) -> tuple[Proposal, Vote]:
    """Start the height, receive round 0's proposal from another validator, and return
    it with the prepare vote the engine sends."""
    solo.start()
    proposer = other_proposer(solo, 0)
    first = proposal(solo, proposer, 0, make_block(solo, proposer, time_ms=5))
    solo.receive(first)
    close_window(solo, 0)
    (prepare,) = votes(solo.sent, Kind.PREPARE, 0)
    return first, prepare


def lock_on(solo: Solo, prepare: Vote, helpers: tuple[int, ...]) -> None:
    """Bring the engine's prepare to a quorum with the prepares of `helpers`."""
    for who in helpers:
        solo.receive(
            vote(
                solo,
                who,
                Kind.PREPARE,
                prepare.round,
                prepare.block_hash,
                prepare.proposal_signature,
            )
        )


# -- rule 1: one vote per height, round and phase --------------------------------------


@pytest.mark.parametrize("kind", list(EngineKind))
def test_replayed_and_conflicting_messages_never_draw_a_second_vote(kind: EngineKind) -> None:
    solo = Solo(kind, me=ME)
    first, prepare = prepare_round_zero(solo)
    solo.receive(first)  # the same bytes again
    proposer = other_proposer(solo, 0)
    second = proposal(solo, proposer, 0, make_block(solo, proposer, time_ms=6))
    solo.receive(second)  # the same proposer, the same round, another block
    assert any(isinstance(e, EquivocationEvidence) for e in solo.evidence)
    if kind is EngineKind.AFBFT:
        # the other candidates' proposals, after the window closed and the engine
        # prepared: choosing again among them would be a second prepare
        for who in (1, 2):
            solo.receive(proposal(solo, who, 0, make_block(solo, who, time_ms=7 + who)))
        close_window(solo, 0)
    assert votes(solo.sent, Kind.PREPARE, 0) == [prepare]

    helpers = tuple(i for i in range(4) if i != ME)
    lock_on(solo, prepare, helpers * 2)  # every prepare, twice: a quorum, then more
    (commit,) = votes(solo.sent, Kind.COMMIT, 0)
    assert commit.block_hash == prepare.block_hash
    assert solo.engine.stats.dropped_duplicate >= 1 + len(helpers)
    assert assert_one_vote_per_step(solo) == {(Kind.PREPARE, 1, 0): 1, (Kind.COMMIT, 1, 0): 1}


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_restarted_validator_prepares_again_only_what_it_prepared(kind: EngineKind) -> None:
    """After a crash the node's engine is new; its consensus WAL gives back what it
    signed (its own proposal, its prepare), but the peers do not send their proposals
    again. Under AFBFT its own block is then the only candidate left: it must not
    prepare that one instead (the WAL would send the logged prepare, but the engine
    would count a prepare it never sent, for a block no one else prepared)."""
    solo = Solo(kind, me=ME)
    first, prepare = prepare_round_zero(solo)
    assert prepare.block_hash == block_id(block_of(solo, first))
    logged = [m for m in solo.sent if isinstance(m, Proposal | Vote)]
    if kind is EngineKind.AFBFT:  # its own block was a candidate, not the lowest draw
        assert [m.proposer for m in logged if isinstance(m, Proposal)] == [solo.keys[ME].public_key]

    solo.engine = BftEngine(solo.engine.config, solo.keys[ME], solo.app)
    solo.sent.clear()
    solo.feed(Start(solo.now))
    for message in logged:
        solo.receive(message)
    solo.fire(TimerKind.NEW_ROUND, 0)
    if kind is not EngineKind.AFBFT:
        solo.receive(first)  # the primary's proposal, which it heard again
    close_window(solo, 0)
    again = [prepare] if kind is not EngineKind.AFBFT else []
    assert votes(solo.sent, Kind.PREPARE, 0) == again  # the same bytes, or nothing yet
    state = solo.engine._state
    assert state is not None
    mine = solo.keys[ME].public_key
    assert [d for d, book in state.at(0).prepares.items() if mine in book] == [prepare.block_hash]


@pytest.mark.parametrize("kind", list(EngineKind))
def test_no_vote_in_a_round_the_validator_has_left(kind: EngineKind) -> None:
    solo = Solo(kind, me=ME)
    solo.start()
    solo.fire(TimerKind.ROUND, 0)  # round 0 timed out before its proposal came
    assert solo.engine.round == 1
    late = other_proposer(solo, 0)
    solo.receive(proposal(solo, late, 0, make_block(solo, late, time_ms=5)))
    close_window(solo, 0)
    assert votes(solo.sent, Kind.PREPARE, 0) == []
    assert solo.engine.stats.dropped_stale == 1


# -- rule 2: a round change carries the highest prepared certificate --------------------


def test_a_round_change_without_a_prepared_block_carries_no_certificate() -> None:
    solo = Solo(EngineKind.PBFT, me=ME)
    solo.start()
    (change,) = [m for m in solo.fire(TimerKind.ROUND, 0) if isinstance(m, RoundChange)]
    assert (change.round, change.prepared) == (1, ())


def _certificate_in(solo: Solo, messages: list[object], round_: int) -> PreparedCertificate:
    (change,) = [m for m in messages if isinstance(m, RoundChange) and m.round == round_]
    assert verify(CHAIN, change)
    (cert,) = change.prepared
    voters = {p.validator for p in cert.prepares}
    assert len(voters) >= 3 and all(verify(CHAIN, p) for p in cert.prepares)
    assert {(p.kind, p.round, p.block_hash) for p in cert.prepares} == {
        (Kind.PREPARE, cert.round, block_id(cert.block))
    }
    return cert


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_round_change_carries_the_highest_prepared_certificate(kind: EngineKind) -> None:
    solo = Solo(kind, me=ME)
    _, prepare = prepare_round_zero(solo)
    others = [i for i in range(4) if i != ME]
    lock_on(solo, prepare, tuple(others[:2]))  # prepared at round 0 (no commits come)
    cert = _certificate_in(solo, solo.fire(TimerKind.ROUND, 0), 1)
    assert (cert.round, block_id(cert.block)) == (0, prepare.block_hash)

    # round 1 re-proposes that block; the engine prepares it again there
    changes = tuple(round_change(solo, who, 1, (cert,)) for who in others[:2])
    for change in changes:
        solo.receive(change)
    if kind is not EngineKind.AFBFT:  # (an AFBFT candidate proposes it itself)
        mine = next(m for m in solo.sent if isinstance(m, RoundChange))
        justification = tuple(sorted((*changes, mine), key=lambda c: c.validator))
        proposer = other_proposer(solo, 1)
        solo.receive(proposal(solo, proposer, 1, cert.block, justification))
    close_window(solo, 1)
    (again,) = votes(solo.sent, Kind.PREPARE, 1)
    assert again.block_hash == prepare.block_hash
    lock_on(solo, again, tuple(others[:2]))
    # the late third prepare of round 0 completes an older certificate: it must not
    # replace the newer one
    lock_on(solo, prepare, (others[2],))

    cert = _certificate_in(solo, solo.fire(TimerKind.ROUND, 1), 2)
    assert (cert.round, block_id(cert.block)) == (1, prepare.block_hash)
    assert_one_vote_per_step(solo)


# -- rule 3: above round 0, re-propose the highest prepared block -----------------------


def _two_certificates(solo: Solo) -> tuple[Block, Block, dict[int, tuple[PreparedCertificate]]]:
    """Block `low` prepared at round 0 and `high` at round 1, each carried by one
    round change; the lower one by the validator whose change sorts first, so an engine
    that took the first certificate it met, not the highest, would pick `low`."""
    low, high = make_block(solo, 0, time_ms=5), make_block(solo, 1, time_ms=6)
    others = sorted((i for i in range(4) if i != ME), key=lambda i: solo.keys[i].public_key)
    certs = {
        others[0]: (prepared(solo, 0, low, (0, 1, 2)),),
        others[1]: (prepared(solo, 1, high, (0, 1, 2)),),
    }
    return low, high, certs


@pytest.mark.parametrize("kind", list(EngineKind))
def test_the_engine_re_proposes_the_highest_prepared_block(kind: EngineKind) -> None:
    solo = Solo(kind, me=ME)
    solo.start()
    _, high, certs = _two_certificates(solo)
    round_ = next(r for r in range(2, 10) if kind is EngineKind.AFBFT or primary(solo, r) == ME)
    for who, carried in sorted(certs.items()):
        solo.receive(round_change(solo, who, round_, carried))
    (made,) = [m for m in solo.sent if isinstance(m, Proposal) and m.round == round_]
    assert made.block == high
    assert len({c.validator for c in made.justification}) >= 3
    assert {c.round for c in made.justification} == {round_}
    close_window(solo, round_)
    (prepare,) = votes(solo.sent, Kind.PREPARE, round_)
    assert prepare.block_hash == block_id(high)


@pytest.mark.parametrize("kind", list(EngineKind))
def test_with_nothing_prepared_the_engine_proposes_a_new_block(kind: EngineKind) -> None:
    solo = Solo(kind, me=ME)
    solo.start()
    round_ = next(r for r in range(2, 10) if kind is EngineKind.AFBFT or primary(solo, r) == ME)
    for who in (0, 1):
        solo.receive(round_change(solo, who, round_))
    (made,) = [m for m in solo.sent if isinstance(m, Proposal) and m.round == round_]
    assert made.proposer == solo.keys[ME].public_key
    if kind is EngineKind.AFBFT:  # a fresh AFBFT proposal is an ordering, not a block
        assert isinstance(made.block, Ordering)
        assert made.block.parent == block_id(solo.app.last_block())
    else:
        assert isinstance(made.block, Block)
        assert made.block.header.proposer == address_from_public_key(made.proposer)


CASES = ["highest", "lower", "new", "no_quorum", "bad_certificate"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_proposal_that_drops_the_highest_prepared_block_is_refused(
    kind: EngineKind, case: str
) -> None:
    solo = Solo(kind, me=ME)
    solo.start()
    low, high, certs = _two_certificates(solo)
    round_ = next(r for r in range(2, 10) if kind is EngineKind.AFBFT or primary(solo, r) != ME)
    proposer = other_proposer(solo, round_)
    voters = [i for i in range(4) if i != ME]
    if case == "bad_certificate":  # two prepares are no quorum: not a certificate
        certs = {
            w: (dataclasses.replace(c[0], prepares=c[0].prepares[:2]),) for w, c in certs.items()
        }
    justification = tuple(
        sorted(
            (round_change(solo, w, round_, certs.get(w, ())) for w in voters),
            key=lambda c: c.validator,
        )
    )
    if case == "no_quorum":
        justification = justification[:2]
    block = {"lower": low, "new": make_block(solo, proposer, time_ms=9)}.get(case, high)
    solo.receive(proposal(solo, proposer, round_, block, justification))
    close_window(solo, round_)
    prepares = votes(solo.sent, Kind.PREPARE, round_)
    if case == "highest":
        assert [p.block_hash for p in prepares] == [block_id(high)]
        assert solo.engine.round == round_
    else:
        assert prepares == []
        assert solo.engine.round == 0  # an unjustified new view moves nobody
        assert solo.engine.stats.dropped_malformed == 1
