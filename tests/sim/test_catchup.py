"""Paper 002's catch-up probability: Nakamoto's formula against the Bitcoin paper's own
table, the exact race, seeded runs of it, and the anchors refusing late rewrites."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from medchain.sim import CatchUpSettings, catch_up_table, exact, nakamoto
from medchain.sim._catchup import AnchoredChain, give_up_after, race

BITCOIN_PAPER = {
    # Bitcoin paper, section 11: "q=0.1" and "q=0.3" tables (7 decimals)
    (10, 0): 1.0,
    (10, 1): 0.2045873,
    (10, 2): 0.0509779,
    (10, 3): 0.0131722,
    (10, 4): 0.0034552,
    (10, 5): 0.0009137,
    (10, 6): 0.0002428,
    (10, 7): 0.0000647,
    (10, 8): 0.0000173,
    (10, 9): 0.0000046,
    (10, 10): 0.0000012,
    (30, 0): 1.0,
    (30, 5): 0.1773523,
    (30, 10): 0.0416605,
    (30, 15): 0.0101008,
    (30, 20): 0.0024804,
    (30, 50): 0.0000006,
}


@pytest.mark.parametrize(("q_pct", "z"), sorted(BITCOIN_PAPER))
def test_the_formula_gives_the_bitcoin_papers_table(q_pct: int, z: int) -> None:
    assert round(nakamoto(Fraction(q_pct, 100), z), 7) == BITCOIN_PAPER[q_pct, z]


def test_the_exact_race_by_hand() -> None:
    q = Fraction(1, 10)
    assert exact(q, 0) == 1
    # z = 1: the attacker wins if its first block comes before the honest one (q), or
    # if it is one behind and ever draws level (p * q/p = q)
    assert exact(q, 1) == Fraction(1, 5)
    assert exact(Fraction(6, 10), 7) == 1  # a majority always draws level
    assert exact(q, 5) < exact(q, 4) < exact(q, 3)


def test_seeded_races_agree_with_the_exact_probability() -> None:
    settings = CatchUpSettings(shares_pct=(10, 30), max_confirmations=6, runs=4_000, seed=7)
    for row in catch_up_table(settings):
        p = float(row.exact)
        sigma = math.sqrt(p * (1 - p) / row.runs)
        assert abs(row.simulated - p) <= 4 * sigma + 1 / row.runs, row


def test_the_same_seed_gives_the_same_table_and_another_seed_another() -> None:
    settings = CatchUpSettings(shares_pct=(30,), max_confirmations=4, runs=500)
    assert catch_up_table(settings) == catch_up_table(settings)
    other = CatchUpSettings(shares_pct=(30,), max_confirmations=4, runs=500, seed=2)
    assert catch_up_table(other) != catch_up_table(settings)


def test_a_race_ends_when_the_attacker_draws_level_after_z_confirmations() -> None:
    rng = random.Random(3)
    for _ in range(200):
        end = race(rng, 30, 4, give_up_after(30, 4))
        if end is not None:
            honest, attacker = end
            assert honest >= 4 and attacker >= honest
            assert honest == 4 or attacker == honest  # ahead only when z was reached
    assert race(rng, 30, 0, 10) == (0, 0)
    assert give_up_after(60, 3) > 10**9  # a majority is never given up on
    assert Fraction(30, 70) ** give_up_after(30, 0) < Fraction(1, 10**9)


def test_the_anchor_check_refuses_a_rewrite_only_once_its_anchor_is_final() -> None:
    chain = AnchoredChain(every=5, delay=1, seed=1)
    assert chain.final_after == 6
    assert not chain.refuses(4, 4)  # below the checkpoint: nothing anchored to differ from
    assert not chain.refuses(5, 5)  # the anchor names the honest block but is pending
    assert chain.refuses(6, 6)  # final: the rewritten block at height 10 is refused
    assert chain.refuses(9, 12)


def test_anchors_close_the_attack_from_the_interval_plus_the_delay() -> None:
    settings = CatchUpSettings(shares_pct=(30, 60), max_confirmations=8, runs=400)
    for row in catch_up_table(settings):
        assert 0 <= row.refused <= row.caught
        if row.z >= settings.anchor_every + settings.anchor_delay:
            assert row.with_anchors == 0 and row.refused == row.caught
        if row.q_pct == 60:
            assert row.caught == row.runs  # a majority always catches up without anchors
