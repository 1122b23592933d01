"""Who votes and who proposes: quorums, each engine's proposer order, its
determinism, and AFBFT's verifiable draws."""

from __future__ import annotations

import dataclasses

from hypothesis import given, settings
from hypothesis import strategies as st

from medchain.consensus import EngineKind, afbft_alpha, afbft_seed, quorum_size
from medchain.consensus._schedule import plan_height
from medchain.crypto import address_from_public_key, vrf_proof_to_hash, vrf_prove
from medchain.types import block_hash

from .harness import FakeApp, fixed_keys

KEYS = fixed_keys(5)
PUBLIC = tuple(k.public_key for k in KEYS)


@given(st.integers(1, 400))
def test_two_quorums_share_an_honest_voter_and_the_honest_form_one(voters: int) -> None:
    faulty = (voters - 1) // 3
    quorum = quorum_size(voters)
    assert 2 * quorum - voters >= faulty + 1  # any two quorums overlap beyond the faulty
    assert quorum <= voters - faulty  # the honest alone can decide


def _app_after(proposer: int | None) -> FakeApp:
    """A chain whose tip (height 1 if `proposer` is given) was proposed by `proposer`."""
    app = FakeApp(PUBLIC)
    if proposer is not None:
        app.blocks.append(app.propose(1, 5, PUBLIC[proposer], b""))
    return app


def test_pbft_keeps_the_last_proposer_and_passes_the_role_on_each_round() -> None:
    genesis_plan = plan_height(EngineKind.PBFT, _app_after(None))
    assert [genesis_plan.primary(r) for r in range(6)] == [*PUBLIC, PUBLIC[0]]
    plan = plan_height(EngineKind.PBFT, _app_after(3))
    assert plan.height == 2 and plan.voters == PUBLIC
    assert [plan.primary(r) for r in range(5)] == [PUBLIC[(3 + r) % 5] for r in range(5)]


def test_dpos_producers_take_turns_by_height_among_the_committee() -> None:
    app = FakeApp(PUBLIC, candidates=PUBLIC[:3])
    plan = plan_height(EngineKind.DPOS, app)
    assert plan.voters == PUBLIC[:3]  # only the committee votes
    assert [plan.primary(r) for r in range(4)] == [PUBLIC[(1 + r) % 3] for r in range(4)]
    app.blocks.append(app.propose(1, 5, PUBLIC[0], b""))
    assert plan_height(EngineKind.DPOS, app).primary(0) == PUBLIC[2]


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(list(EngineKind)), st.integers(0, 4))
def test_plans_are_a_function_of_the_chain_alone(kind: EngineKind, proposer: int) -> None:
    first = plan_height(kind, _app_after(proposer))
    again = plan_height(kind, _app_after(proposer))
    assert first == again
    if kind is not EngineKind.AFBFT:
        assert [first.primary(r) for r in range(7)] == [again.primary(r) for r in range(7)]


def _proof(who: int, alpha: bytes) -> bytes:
    return vrf_prove(KEYS[who].signing_seed, alpha)


@settings(max_examples=20, deadline=None)
@given(st.permutations(range(5)))
def test_afbft_ranks_by_draw_whatever_order_the_proofs_arrive_in(order: list[int]) -> None:
    plan = plan_height(EngineKind.AFBFT, _app_after(None))
    assert plan.primary(0) is None  # nobody knows the order before the proofs are out
    for who in order:
        assert plan.learn_vrf(PUBLIC[who], _proof(who, plan.alpha))
    outputs = {PUBLIC[w]: vrf_proof_to_hash(_proof(w, plan.alpha)) for w in range(5)}
    expected = sorted(PUBLIC, key=lambda k: outputs[k])
    assert [plan.primary(r) for r in range(5)] == expected


def test_afbft_refuses_a_stranger_and_a_proof_for_another_input() -> None:
    plan = plan_height(EngineKind.AFBFT, FakeApp(PUBLIC, candidates=PUBLIC[:4]))
    assert not plan.learn_vrf(PUBLIC[4], _proof(4, plan.alpha))  # not a candidate
    assert not plan.learn_vrf(PUBLIC[0], _proof(1, plan.alpha))  # someone else's proof
    assert not plan.learn_vrf(PUBLIC[0], _proof(0, plan.alpha + b"x"))  # another draw
    assert plan.vrf_outputs == {}
    assert plan.learn_vrf(PUBLIC[0], _proof(0, plan.alpha))


def test_afbft_draws_are_bound_to_the_chain_the_seed_and_the_height() -> None:
    app = FakeApp(PUBLIC)
    genesis = app.blocks[0]
    assert afbft_seed(genesis) == block_hash(genesis.header)  # no draw at genesis
    alpha = afbft_alpha(genesis, 1)
    assert afbft_alpha(genesis, 2) != alpha
    other_chain = dataclasses.replace(
        genesis, header=dataclasses.replace(genesis.header, chain_id="another-chain")
    )
    assert afbft_alpha(other_chain, 1) != alpha
    proof = _proof(2, alpha)
    drawn = app.propose(1, 5, PUBLIC[2], proof)
    assert afbft_seed(drawn) == vrf_proof_to_hash(proof)  # the winner's output seeds the next


def test_a_header_carries_a_valid_draw_under_afbft_and_none_otherwise() -> None:
    app = FakeApp(PUBLIC)
    afbft = plan_height(EngineKind.AFBFT, app)
    pbft = plan_height(EngineKind.PBFT, app)
    drawn = app.propose(1, 5, PUBLIC[2], _proof(2, afbft.alpha))
    plain = app.propose(1, 5, PUBLIC[2], b"")
    stolen = dataclasses.replace(
        drawn,
        header=dataclasses.replace(drawn.header, proposer=address_from_public_key(PUBLIC[3])),
    )
    assert afbft.header_proof_ok(drawn)
    assert not afbft.header_proof_ok(plain)
    assert not afbft.header_proof_ok(stolen)  # a proof is good only for its own proposer
    assert pbft.header_proof_ok(plain)
    assert not pbft.header_proof_ok(drawn)
