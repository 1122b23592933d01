"""The BFT engine on a toy network: commits, certificates, round changes,
evidence, catch-up, and the message hygiene rules."""

from __future__ import annotations

import dataclasses
from typing import TypedDict

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medchain.consensus import (
    BftEngine,
    Broadcast,
    Checkpoint,
    EngineKind,
    Kind,
    MessageReceived,
    Proposal,
    RoundChange,
    Start,
    SyncRequest,
    SyncResponse,
    TimerKind,
    Vote,
    block_id,
    proposal_digest,
    sign,
    unwire,
    verify,
    verify_certificate,
    wire,
)
from medchain.consensus._messages import AccusationMessage, PreparedCertificate, signed_proposal
from medchain.types import Block, EquivocationEvidence, InvalidProposalEvidence
from tests.hostile import hostile
from tests.types.test_codec import blocks

from .harness import CHAIN, Net, Solo
from .test_engine_rules import ME, block_of, close_window, make_block, proposal, votes


class Timing(TypedDict):
    block_interval_ms: int
    round_timeout_ms: int
    proposal_window_ms: int


FAST = Timing(block_interval_ms=10, round_timeout_ms=100, proposal_window_ms=5)


@pytest.mark.parametrize("kind", list(EngineKind))
def test_four_validators_commit_and_agree(kind: EngineKind) -> None:
    net = Net(4, kind, **FAST)
    net.start()
    net.run(until_ms=2_000)
    heights = net.heights()
    assert min(heights) >= 20, heights
    net.assert_agreement()
    assert set(net.committed_rounds) == {0}


def test_certificates_verify_with_a_quorum_of_commits() -> None:
    net = Net(4, **FAST)
    net.start()
    net.run(until_ms=500)
    keys = tuple(k.public_key for k in net.keys)
    block = net.apps[2].blocks[5]
    assert verify_certificate(CHAIN, block, keys, 3)
    assert len(block.certificate.signatures) >= 3
    forged = dataclasses.replace(
        block,
        certificate=dataclasses.replace(
            block.certificate, signatures=block.certificate.signatures[:2]
        ),
    )
    assert not verify_certificate(CHAIN, forged, keys, 3)


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_crashed_primary_is_replaced(kind: EngineKind) -> None:
    net = Net(4, kind, **FAST)
    net.start()
    net.run(until_ms=300)
    before = net.heights()[1]
    primary = net.engines[1]._state.plan.primary(net.engines[1].round)  # type: ignore[union-attr]
    assert primary is not None
    net.down.add(net.index(primary))
    net.run(until_ms=3_000)
    alive = [i for i in range(4) if i not in net.down]
    assert min(net.heights()[i] for i in alive) >= before + 5
    net.assert_agreement(alive)
    if kind is EngineKind.AFBFT:
        # the missing candidate just does not propose: the next-lowest draw wins when
        # the proposal window closes, without a round timeout
        assert max(net.committed_rounds) == 0
    else:
        assert max(net.committed_rounds) >= 1


def test_no_progress_without_a_quorum_and_recovery_after() -> None:
    net = Net(4, **FAST)
    net.start()
    net.run(until_ms=200)
    net.down |= {2, 3}
    net.run(until_ms=1_500)
    stalled = net.heights()[0]
    net.run(until_ms=2_500)
    assert net.heights()[0] == stalled
    net.down.clear()
    net.run(until_ms=12_000)
    assert min(net.heights()) > stalled
    net.assert_agreement()


def test_lagging_node_catches_up_by_sync() -> None:
    net = Net(4, **FAST)
    net.start()
    net.down.add(3)
    net.run(until_ms=1_000)
    assert net.heights()[3] == 0
    net.down.clear()
    net._push(net.now, 3, __import__("medchain.consensus", fromlist=["Start"]).Start(net.now))
    net.run(until_ms=3_000)
    assert net.engines[3].stats.synced_blocks > 0
    assert net.heights()[3] >= net.heights()[0] - 1
    net.assert_agreement()


def test_equivocating_primary_is_caught() -> None:
    net = Net(4, **FAST)
    keys = net.keys

    def split(node: int, action: object) -> list[object]:
        if not isinstance(action, Broadcast) or action.kind != Kind.PROPOSAL:
            return [action]
        proposal = unwire(action.data)
        assert isinstance(proposal, Proposal) and isinstance(proposal.block, Block)
        other_header = dataclasses.replace(
            proposal.block.header, time_ms=proposal.block.header.time_ms + 1
        )
        other = sign(
            CHAIN,
            dataclasses.replace(
                proposal, block=dataclasses.replace(proposal.block, header=other_header)
            ),
            keys[node],
        )
        net._push(net.now + 1, (node + 1) % 4, MessageReceived(0, action.data))
        net._push(net.now + 1, (node + 2) % 4, MessageReceived(0, wire(other)))
        net._push(net.now + 1, (node + 3) % 4, MessageReceived(0, wire(other)))
        return []

    net.rewrite = {i: split for i in range(4)}  # whoever is primary equivocates
    net.start()
    net.run(until_ms=300)
    kinds = {type(e) for _, e in net.evidence}
    assert EquivocationEvidence in kinds
    evidence = next(e for _, e in net.evidence if isinstance(e, EquivocationEvidence))
    assert evidence.first.block_hash != evidence.second.block_hash
    assert evidence.first.proposer == evidence.second.proposer
    net.assert_agreement()


@pytest.mark.parametrize("kind", list(EngineKind))
def test_a_proposer_restarted_mid_height_keeps_the_proposal_it_logged(kind: EngineKind) -> None:
    """What the node does after a crash: a fresh engine on the same ledger, fed (after
    Start) what its consensus WAL kept of the height in progress. The proposal it signed
    before the crash is that round's proposal: it proposes no other block, and does not
    catch itself "equivocating" (and report its own evidence)."""
    net = Net(4, kind, **FAST)
    crashed: list[tuple[int, Broadcast]] = []

    def crash_after_proposing(node: int, action: object) -> list[object]:
        if (
            not crashed
            and net.now > 200
            and isinstance(action, Broadcast)
            and action.kind == Kind.PROPOSAL
        ):
            crashed.append((node, action))  # it went out; the process dies right after
            net.down.add(node)
        return [action]

    net.rewrite = {i: crash_after_proposing for i in range(4)}
    net.start()
    net.run(until_ms=600)
    assert crashed, "nobody proposed"
    node, logged = crashed[0]
    assert logged.step is not None
    height = logged.step[0]
    assert net.heights()[node] == height - 1  # it died before the height was decided
    assert min(h for i, h in enumerate(net.heights()) if i != node) >= height  # others went on

    restarted = BftEngine(net.engines[node].config, net.keys[node], net.apps[node])
    net.engines[node] = restarted
    net.down.discard(node)
    proposed_again: list[bytes] = []

    def watch(_: int, action: object) -> list[object]:
        if isinstance(action, Broadcast) and (action.kind, action.step) == (
            Kind.PROPOSAL,
            logged.step,
        ):
            proposed_again.append(action.data)
        return [action]

    net.rewrite = {node: watch}
    net._push(net.now, node, Start(net.now))
    net._push(net.now, node, MessageReceived(net.now, logged.data))  # the WAL's replay
    net.run(until_ms=2_000)

    assert restarted.stats.equivocations == 0
    assert not [e for i, e in net.evidence if i == node and isinstance(e, EquivocationEvidence)]
    assert all(data == logged.data for data in proposed_again), "a second proposal signed"
    assert net.heights()[node] >= height  # and it caught up
    net.assert_agreement()


def test_invalid_proposal_draws_a_quorum_of_accusations() -> None:
    net = Net(4, **FAST)
    bad = net.keys[0].public_key
    for app in net.apps:
        app.invalid_from.add(bad)
    net.start()
    net.run(until_ms=1_000)
    invalid = [e for _, e in net.evidence if isinstance(e, InvalidProposalEvidence)]
    assert invalid and len(invalid[0].accusations) >= 3
    assert min(net.heights()) >= 3  # the others carry on after a round change
    net.assert_agreement()


def test_message_hygiene_counters() -> None:
    net = Net(4, **FAST)
    net.start()
    net.run(until_ms=100)
    engine = net.engines[0]
    vote = sign(
        CHAIN,
        Vote(Kind.PREPARE, engine.height, 0, b"\x01" * 32, net.keys[1].public_key),
        net.keys[1],
    )
    data = wire(vote)
    engine.handle(MessageReceived(net.now, data))
    engine.handle(MessageReceived(net.now, data))
    assert engine.stats.dropped_duplicate >= 1
    engine.handle(MessageReceived(net.now, b"\x00garbage"))
    assert engine.stats.dropped_malformed == 1
    forged = dataclasses.replace(vote, signature=net.keys[2].sign(b"x"))
    engine.handle(MessageReceived(net.now, wire(forged)))
    assert engine.stats.dropped_bad_signature == 1
    from medchain.crypto import AccountKeys

    stranger = AccountKeys.generate()
    alien = sign(
        CHAIN, Vote(Kind.PREPARE, engine.height, 0, b"\x01" * 32, stranger.public_key), stranger
    )
    engine.handle(MessageReceived(net.now, wire(alien)))
    assert engine.stats.dropped_unknown_sender == 1
    old = sign(CHAIN, Vote(Kind.PREPARE, 1, 0, b"\x01" * 32, net.keys[1].public_key), net.keys[1])
    if engine.height > 1:
        engine.handle(MessageReceived(net.now, wire(old)))
        assert engine.stats.dropped_stale >= 1


def test_hostile_field_values_are_dropped_not_fatal() -> None:
    """A bit-flipped message can decode with absurd numbers; it must be dropped."""
    net = Net(4, **FAST)
    net.start()
    net.run(until_ms=100)
    engine = net.engines[0]
    sender = net.keys[1]
    for vote in (
        Vote(Kind.COMMIT, engine.height, 2**40, b"\x01" * 32, sender.public_key, b"", b"\x00" * 64),
        Vote(Kind.PREPARE, 2**70, 0, b"\x01" * 32, sender.public_key, b"", b"\x00" * 64),
        Vote(Kind.PREPARE, engine.height, 0, b"\x01" * 5, sender.public_key, b"", b"\x00" * 64),
        Vote(Kind.PREPARE, engine.height, 0, b"\x01" * 32, sender.public_key, b"", b"\x00" * 3),
    ):
        before = engine.stats.dropped_malformed
        engine.handle(MessageReceived(net.now, wire(vote)))
        assert engine.stats.dropped_malformed == before + 1
    net.run(until_ms=1_000)
    net.assert_agreement()


def test_the_genesis_names_the_engine() -> None:
    from medchain.consensus import engine_kind
    from medchain.types import ChainParams, MedchainError

    assert engine_kind(ChainParams().consensus) is EngineKind.PBFT
    assert engine_kind("afbft") is EngineKind.AFBFT
    with pytest.raises(MedchainError, match="pbft, afbft, dpos"):
        engine_kind("raft")


def test_block_requests_are_answered_only_to_their_sender_and_replays_are_paced() -> None:
    from medchain.consensus import MessageReceived, Send, SyncRequest

    net = Net(4, **FAST)
    net.start()
    net.run(until_ms=500)
    server = net.engines[0]
    assert net.heights()[0] > 3
    asker, other = net.keys[1], net.keys[2]
    request = wire(sign(CHAIN, SyncRequest(1, asker.public_key), asker))

    def answers(data: bytes, sender: bytes, at: int) -> list[Send]:
        actions = server.handle(MessageReceived(at, data, sender))
        return [a for a in actions if isinstance(a, Send) and a.kind == Kind.SYNC_RESPONSE]

    assert answers(request, other.public_key, 1_000) == []  # replayed by a third peer
    (sent,) = answers(request, asker.public_key, 1_001)
    assert sent.to == asker.public_key
    assert answers(request, asker.public_key, 1_002) == []  # the same bytes again
    later = wire(sign(CHAIN, SyncRequest(3, asker.public_key), asker))
    assert len(answers(later, asker.public_key, 1_003)) == 1  # progress: answered at once
    again = wire(sign(CHAIN, SyncRequest(2, asker.public_key), asker))
    assert answers(again, asker.public_key, 1_004) == []  # older blocks, too soon
    assert len(answers(again, asker.public_key, 1_004 + 1_000)) == 1  # a restart, later on


def test_each_checkpoint_is_certified_once_by_a_quorum_of_valid_signatures() -> None:
    net = Net(4, EngineKind.PBFT, checkpoint_interval=5, **FAST)
    net.start()
    net.run(until_ms=1_000)
    top = min(net.heights())
    assert top >= 15
    for node in range(4):
        certified = net.certified[node]
        heights = [c.checkpoint.height for c in certified]
        assert heights == sorted(set(heights)), "each height is certified once, in order"
        assert set(range(5, top - 4, 5)) <= set(heights)
        for cert in certified:
            block = net.apps[node].block_at(cert.checkpoint.height)
            assert block is not None and block_id(block) == cert.checkpoint.block_hash
            signers = [s.validator for s in cert.signatures]
            assert signers == sorted(set(signers)) and len(signers) >= 3
            assert all(verify(CHAIN, s) for s in cert.signatures)
            assert {(s.height, s.block_hash, s.state_root) for s in cert.signatures} == {
                (cert.checkpoint.height, cert.checkpoint.block_hash, cert.checkpoint.state_root)
            }


def test_checkpoints_at_heights_where_none_is_due_are_dropped() -> None:
    net = Net(4, EngineKind.PBFT, checkpoint_interval=5, **FAST)
    net.start()
    net.run(until_ms=50)
    engine = net.engines[0]
    before = engine.stats.dropped_malformed
    for height in (3, engine.height + 10_000):  # not a multiple / too far ahead
        forged = sign(
            CHAIN,
            Checkpoint(height, b"\x01" * 32, b"\x02" * 32, net.keys[1].public_key),
            net.keys[1],
        )
        engine.handle(MessageReceived(net.now, wire(forged)))
    assert engine.stats.dropped_malformed == before + 2


# -- hostile input: a peer's bytes, or a Byzantine validator's signed nonsense ----------


@st.composite
def signed_nonsense(draw: st.DrawFn, net: Net, height: int) -> bytes:
    """A well-formed message signed by validator 1, every field drawn from values
    that are near the truth, absurd, or empty."""
    key = net.keys[1]
    heights = st.one_of(st.integers(0, height + 3), st.integers(0, 2**64))
    rounds = st.one_of(st.integers(0, 3), st.integers(0, 2**40))
    digests = st.one_of(st.binary(min_size=32, max_size=32), st.binary(max_size=40))
    votes = st.builds(
        Vote,
        st.sampled_from((Kind.PREPARE, Kind.COMMIT)),
        heights,
        rounds,
        digests,
        st.just(key.public_key),
        st.binary(max_size=64),
        st.binary(max_size=64),
    )
    round_changes = st.builds(
        RoundChange,
        heights,
        rounds,
        st.lists(
            st.builds(PreparedCertificate, rounds, blocks, st.lists(votes, max_size=3).map(tuple)),
            max_size=2,
        ).map(tuple),
        st.just(key.public_key),
    )
    message = draw(
        st.one_of(
            votes,
            round_changes,
            st.builds(
                Proposal,
                heights,
                rounds,
                blocks,
                st.binary(max_size=100),
                st.lists(round_changes, max_size=3).map(tuple),
                st.just(key.public_key),
            ),
            st.builds(Checkpoint, heights, digests, digests, st.just(key.public_key)),
            st.builds(AccusationMessage, heights, rounds, digests, st.just(key.public_key)),
            st.builds(SyncRequest, heights, st.just(key.public_key)),
            st.builds(
                SyncResponse, st.lists(blocks, max_size=3).map(tuple), st.just(key.public_key)
            ),
        )
    )
    try:
        return wire(sign(CHAIN, message, key))
    except OverflowError:  # no signed layout holds such a field: send it unsigned
        return wire(dataclasses.replace(message, signature=bytes(64)))


@pytest.mark.parametrize("kind", list(EngineKind))
def test_no_frame_a_peer_sends_makes_the_engine_raise(kind: EngineKind) -> None:
    """Noise, deep nesting, huge length prefixes, mutated messages and a validator's
    validly signed nonsense: each is dropped or handled, the engine never raises, and
    the network still commits and agrees afterwards."""
    net = Net(4, kind, **FAST)
    net.start()
    net.run(until_ms=200)
    engine = net.engines[0]
    valid = st.sampled_from(net.engines[1:]).map(
        lambda e: wire(sign(CHAIN, SyncRequest(e.height, net.keys[1].public_key), net.keys[1]))
    )

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(hostile(valid), signed_nonsense(net, engine.height)))
    def handled(data: bytes) -> None:
        engine.handle(MessageReceived(net.now, data, net.keys[1].public_key))

    handled()
    before = min(net.heights())
    net.run(until_ms=net.now + 2_000)
    assert min(net.heights()) > before
    net.assert_agreement()


# -- AFBFT: the window closes when every seat is heard; split candidates are caught ------


def _afbft_proposals(solo: Solo, senders: tuple[int, ...], time_ms: int = 5) -> list[Proposal]:
    """Hand the engine the round-0 proposals of `senders` (each its own block)."""
    made = [proposal(solo, who, 0, make_block(solo, who, time_ms + who)) for who in senders]
    for sent in made:
        solo.receive(sent)
    return made


def test_afbft_prepares_the_lowest_draw_once_every_seated_candidate_proposed() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)  # the toy app seats all four validators
    own = [p for p in solo.start() if isinstance(p, Proposal)]
    made = own + _afbft_proposals(solo, (0, 1))
    assert votes(solo.sent, Kind.PREPARE, 0) == []  # candidate 2 is still out: wait
    made += _afbft_proposals(solo, (2,))
    (prepare,) = votes(solo.sent, Kind.PREPARE, 0)  # at once, no window timer fired
    state = solo.engine._state
    assert state is not None
    lowest = state.plan.vrf_ranking()[0]
    winner = next(p for p in made if p.proposer == lowest)
    assert prepare.block_hash == block_id(block_of(solo, winner))
    assert prepare.proposal_signature == b""  # AFBFT's prepares carry no echo


def test_afbft_waits_out_the_window_for_a_missing_candidate() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    solo.start()
    _afbft_proposals(solo, (0, 1))
    assert votes(solo.sent, Kind.PREPARE, 0) == []
    close_window(solo, 0)
    assert len(votes(solo.sent, Kind.PREPARE, 0)) == 1


def test_afbft_round_changes_show_the_prepared_proposal_and_catch_a_split() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    made = [p for p in solo.start() if isinstance(p, Proposal)]
    made += _afbft_proposals(solo, (0, 1, 2))
    (prepare,) = votes(solo.sent, Kind.PREPARE, 0)
    state = solo.engine._state
    assert state is not None
    built = {p.proposer: state.block_of(p) for p in made}
    chosen = next(p for p in made if (b := built[p.proposer]) and block_id(b) == prepare.block_hash)
    (change,) = [m for m in solo.fire(TimerKind.ROUND, 0) if isinstance(m, RoundChange)]
    assert change.prepared_proposal == (signed_proposal(chosen),)
    assert solo.evidence == []

    # validator 1's round change shows a second round-0 block candidate 0 signed
    (other,) = [proposal(solo, 0, 0, make_block(solo, 0, time_ms=50))]
    shown = (signed_proposal(other),)
    solo.receive(
        sign(CHAIN, RoundChange(1, 1, (), solo.keys[1].public_key, b"", shown), solo.keys[1])
    )
    (evidence,) = solo.evidence
    assert isinstance(evidence, EquivocationEvidence)
    assert evidence.second == signed_proposal(other)
    assert evidence.first.block_hash == proposal_digest(made[1])  # what 0 sent the engine
    assert solo.keys[0].public_key in state.excluded


def test_a_round_change_cannot_frame_a_candidate_with_a_block_it_never_signed() -> None:
    solo = Solo(EngineKind.AFBFT, me=ME)
    solo.start()
    _afbft_proposals(solo, (0, 1, 2))
    forged = signed_proposal(proposal(solo, 1, 0, make_block(solo, 0, time_ms=50)))
    shown = (dataclasses.replace(forged, proposer=solo.keys[0].public_key),)
    solo.receive(
        sign(CHAIN, RoundChange(1, 1, (), solo.keys[1].public_key, b"", shown), solo.keys[1])
    )
    assert solo.evidence == []
