"""Ledger: dry runs and proposals give exactly what execution gives, and change nothing."""

from __future__ import annotations

import dataclasses

import pytest

from medchain.app import (
    ED25519_COST,
    InvalidBlock,
    InvalidSignature,
    NonceReused,
    TransferArgs,
    _signatures,
)
from medchain.crypto import AccountKeys, sha256, verify_signature
from medchain.types import Tx, tx_id

from .conftest import World


def _transfers(world: World, rich: AccountKeys, count: int) -> list[Tx]:
    return [
        world.tx(rich, "accounts.transfer", TransferArgs(bytes([i + 1]) * 20, 5), nonce=i)
        for i in range(count)
    ]


def test_dry_run_matches_execution_and_changes_nothing(world: World, rich: AccountKeys) -> None:
    txs = _transfers(world, rich, 3)
    before = world.ledger.state.committed()
    preview = world.ledger.dry_run(world.context(), txs)
    assert world.ledger.state.committed() == before
    outcome = world.ledger.execute_block(world.context(), txs, preview.state_root)
    assert outcome == preview


def test_a_wrong_expected_root_refuses_the_block(world: World, rich: AccountKeys) -> None:
    txs = _transfers(world, rich, 2)
    root = world.ledger.state_root()
    with pytest.raises(InvalidBlock, match="state root"):
        world.ledger.execute_block(world.context(), txs, sha256(b"wrong"))
    assert world.ledger.state_root() == root
    world.ledger.execute_block(world.context(), txs)  # and the ledger still works


def test_build_block_skips_invalid_transactions_and_caps(world: World, rich: AccountKeys) -> None:
    good = _transfers(world, rich, 4)
    replay = good[0]
    gap = world.tx(rich, "accounts.transfer", TransferArgs(b"\x09" * 20, 5), nonce=9)
    before = world.ledger.state.committed()
    included, outcome = world.ledger.build_block(
        world.context(), [good[0], replay, gap, good[1], good[2], good[3]], 3
    )
    assert included == tuple(good[:3])
    assert world.ledger.state.committed() == before
    assert world.ledger.execute_block(world.context(), included) == outcome


def test_check_unsigned_refuses_cheaply_and_returns_the_signature_check(
    world: World, rich: AccountKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    verifies = [0]
    real = verify_signature  # what _signatures calls

    def counted(*args: bytes) -> bool:
        verifies[0] += 1
        return real(*args)

    monkeypatch.setattr(_signatures, "verify_signature", counted)
    tx = _transfers(world, rich, 1)[0]
    forged = dataclasses.replace(tx, signature=bytes(reversed(tx.signature)))
    check = world.ledger.check_unsigned(forged)
    assert verifies[0] == 0 and check.cost == ED25519_COST and not check.anonymous
    assert check.key == tx_id(forged) and not check.run()
    assert world.ledger.check_unsigned(tx).run()
    world.run(tx)
    verifies[0] = 0
    with pytest.raises(NonceReused):  # a stale nonce costs no verification
        world.ledger.check_unsigned(forged)
    with pytest.raises(InvalidSignature):  # while check_tx still verifies first
        world.ledger.check_tx(forged)
    assert verifies[0] == 1
