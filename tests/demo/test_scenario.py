"""The story itself, on an in-process LocalStage: what it skips without funds, and
how it pays its actors on a chain that charges fees."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from medchain.app import AuditEntry
from medchain.crypto import AccountKeys
from medchain.demo import LocalStage, Story, run_story
from medchain.node import LocalChain, founding_keys
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator


def _chain(home: Path, params: ChainParams | None = None) -> LocalChain:
    """A chain founded by the devnet's organisations (unfunded: the story pays their
    fees), their key files where the story looks for them."""
    validator = AccountKeys.generate()
    founders = founding_keys()
    genesis = Genesis(
        "medchain-demo",
        1_700_000_000_000,
        params or ChainParams(),
        allocations=(Allocation(validator.address, 1_000_000_000),),
        validators=(
            GenesisValidator(validator.public_key, "v0", organisation=founders[0].org.org_id),
        ),
        organisations=tuple(f.genesis_entry() for f in founders),
    )
    chain = LocalChain.create(home, genesis, validator)
    for founder in founders:
        founder.save(home)
    return chain


def _told(stage: LocalStage) -> str:
    """The story told on `stage`, as printed."""
    out = io.StringIO()

    def trail(entries: list[AuditEntry], _names: dict[bytes, str]) -> str:
        return f"audit trail of {len(entries)} entries"

    try:
        run_story(stage, Story(Console(file=out, width=150), trail))
    finally:
        stage.local.close()
    return out.getvalue()


class _Unfunded(LocalStage):
    @property
    def bank(self) -> None:  # type: ignore[override]
        return None

    @property
    def validator(self) -> None:  # type: ignore[override]
        return None


def test_steps_needing_funds_are_skipped_without_them(tmp_path: Path) -> None:
    out = _told(_Unfunded(_chain(tmp_path / "chain"), tmp_path / "chain"))
    assert "skipped: staking needs tokens" in out and "every check passed" in out


def test_actors_are_paid_on_a_chain_that_charges_fees(tmp_path: Path) -> None:
    out = _told(LocalStage(_chain(tmp_path / "chain", ChainParams(min_fee=7)), tmp_path / "chain"))
    assert "the chain charges 7 per transaction: each actor is given 700" in out
    assert "every check passed" in out
    assert "audit trail of 7 entries" in out  # shown the way the command asked
