"""Paper 002's block-forging attack: how likely an attacker holding a share q of block
production, mining a rewrite in private, catches up with the honest chain after a
transaction has z confirmations, and how the dual chain's anchors (paper 003) close it.

Three figures per (q, z): Nakamoto's formula (Bitcoin paper, section 11: the
attacker's progress approximated by a Poisson sum), the exact probability of the same
race (its progress is negative-binomial; a finite sum, in fractions), and the rate
over seeded runs of the race itself. With anchors, a rewrite that catches up only
after a final anchor named the honest block is refused by the anchor check
(`medchain.anchor.compare_hashes`, run on the rewritten chain's block ids)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cache

from medchain.anchor import Anchor, CheckpointSignature, compare_hashes
from medchain.consensus import Checkpoint, sign
from medchain.sim._chain import CHAIN_ID, sim_keys
from medchain.sim._clock import derive_rng

GIVE_UP = Fraction(1, 10**9)
"""A run ends as lost once the attacker is so far behind that catching up is less
likely than this (the estimate is biased by less than it)."""
NEVER = 2**62
VALIDATORS = 4
"""Validators that sign the anchored checkpoints (any quorum of them would do)."""


def nakamoto(q: Fraction, z: int) -> float:
    """The Bitcoin paper's `AttackerSuccessProbability(q, z)`, step by step as its C code."""
    p = 1 - q
    lam = z * float(q / p)
    total = 1.0
    for k in range(z + 1):
        poisson = math.exp(-lam)
        for i in range(1, k + 1):
            poisson *= lam / i
        total -= poisson * (1 - float(q / p) ** (z - k))
    return total


def exact(q: Fraction, z: int) -> Fraction:
    """The race's own probability: the attacker has k blocks when the honest chain has
    z (negative binomial), then catches up from z - k behind with (q/p)^(z-k)."""
    p = 1 - q
    if z == 0 or q >= p:
        return Fraction(1)
    behind = sum(
        (math.comb(k + z - 1, k) * p**z * q**k * (1 - (q / p) ** (z - k)) for k in range(z)),
        Fraction(0),
    )
    return 1 - behind


@dataclass(frozen=True)
class CatchUpSettings:
    shares_pct: tuple[int, ...] = (10, 30)
    """Attacker's share q of block production, in percent."""
    max_confirmations: int = 10
    runs: int = 10_000
    """Seeded races per (q, z)."""
    seed: int = 1
    anchor_every: int = 5
    """Checkpoint interval (the genesis default): a checkpoint is anchored every K heights."""
    anchor_delay: int = 1
    """Working-chain blocks from a checkpoint's height until its anchor is final."""


@dataclass(frozen=True)
class CatchUpRow:
    q_pct: int
    z: int
    nakamoto: float
    exact: Fraction
    runs: int
    caught: int
    """Races the attacker won without anchors."""
    refused: int
    """Of those, rewrites the anchor check refused: they caught up after a final anchor."""

    @property
    def simulated(self) -> float:
        return self.caught / self.runs

    @property
    def with_anchors(self) -> float:
        return (self.caught - self.refused) / self.runs

    def to_json(self) -> dict[str, object]:
        return {
            "q": self.q_pct / 100,
            "z": self.z,
            "nakamoto": self.nakamoto,
            "exact": float(self.exact),
            "runs": self.runs,
            "caught": self.caught,
            "simulated": self.simulated,
            "refused_by_anchors": self.refused,
            "with_anchors": self.with_anchors,
        }


def race(rng: random.Random, q_pct: int, z: int, give_up: int) -> tuple[int, int] | None:
    """Blocks since the fork, (honest, attacker), when the attacker's private chain
    first reaches the honest one's length with z confirmations given; None if it falls
    `give_up` blocks behind first."""
    honest = attacker = 0
    while honest < z or attacker < honest:
        if honest - attacker > give_up:
            return None
        if rng.randrange(100) < q_pct:
            attacker += 1
        else:
            honest += 1
    return honest, attacker


def give_up_after(q_pct: int, z: int) -> int:
    """How far behind makes catching up less likely than GIVE_UP (never, for an
    attacker with more than half: it catches up with certainty)."""
    ratio = Fraction(q_pct, 100 - q_pct)
    if ratio > 1:
        return NEVER
    behind = 1
    while ratio**behind >= GIVE_UP:
        behind += 1
    return max(behind, z)


class AnchoredChain:
    """The honest chain forked just after a checkpoint (the attacker's best case): the
    transaction's block is the fork's first, the next checkpoint K blocks on covers it,
    signed by a quorum and anchored; its anchor is final `delay` blocks later."""

    def __init__(self, every: int, delay: int, seed: int) -> None:
        self.fork = every
        self.checkpoint = 2 * every
        self.final_after = every + delay
        """Honest blocks since the fork once the covering anchor is final."""
        keys = [sim_keys(seed, i) for i in range(VALIDATORS)]
        self.validators = tuple(k.public_key for k in keys)
        block, root = _block_id(b"honest", self.checkpoint), _block_id(b"root", self.checkpoint)
        self.signatures = tuple(
            CheckpointSignature(
                k.public_key,
                sign(CHAIN_ID, Checkpoint(self.checkpoint, block, root, k.public_key), k).signature,
            )
            for k in sorted(keys, key=lambda k: k.public_key)
        )
        self._refuses: Callable[[int, bool], bool] = cache(self._check)

    def refuses(self, honest: int, attacker: int) -> bool:
        """The anchor check refuses the rewrite published at this point of the race."""
        return self._refuses(self.fork + attacker, honest >= self.final_after)

    def _check(self, tip: int, final: bool) -> bool:
        anchor = Anchor(
            CHAIN_ID,
            self.checkpoint,
            _block_id(b"honest", self.checkpoint),
            _block_id(b"root", self.checkpoint),
            self.signatures,
            "0x" + "00" * 20,
            1,
            bytes(32),
            final,
        )
        rewrite = {
            h: (_block_id(b"attacker", h), _block_id(b"root", h))
            for h in range(self.fork + 1, tip + 1)
        }
        return not compare_hashes(rewrite, [anchor], self.validators).ok


def _block_id(chain: bytes, height: int) -> bytes:
    return hashlib.sha256(chain + height.to_bytes(8, "big")).digest()


def catch_up_row(settings: CatchUpSettings, q_pct: int, z: int, chain: AnchoredChain) -> CatchUpRow:
    rng = derive_rng(settings.seed.to_bytes(8, "big"), "catch-up", q_pct, z)
    give_up = give_up_after(q_pct, z)
    caught = refused = 0
    for _ in range(settings.runs):
        end = race(rng, q_pct, z, give_up)
        if end is None:
            continue
        caught += 1
        refused += chain.refuses(*end)
    q = Fraction(q_pct, 100)
    return CatchUpRow(q_pct, z, nakamoto(q, z), exact(q, z), settings.runs, caught, refused)


def catch_up_table(
    settings: CatchUpSettings, progress: Callable[[str], None] | None = None
) -> list[CatchUpRow]:
    """Every share and every z from 0 to `max_confirmations`."""
    chain = AnchoredChain(settings.anchor_every, settings.anchor_delay, settings.seed)
    rows = []
    for q_pct in settings.shares_pct:
        for z in range(settings.max_confirmations + 1):
            if progress:
                progress(f"q={q_pct}% z={z}")
            rows.append(catch_up_row(settings, q_pct, z, chain))
    return rows


def rows_by_share(rows: Sequence[CatchUpRow]) -> dict[int, list[CatchUpRow]]:
    by_share: dict[int, list[CatchUpRow]] = {}
    for row in rows:
        by_share.setdefault(row.q_pct, []).append(row)
    return by_share
