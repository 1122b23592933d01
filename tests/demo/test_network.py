"""NetworkStage on one node served over HTTP: the chain checks the story makes
(finding a committed transaction, raw submission, nothing applied), and what it
skips when it knows one node it did not start."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from rich.console import Console

from medchain.app import TransferArgs
from medchain.crypto import AccountKeys
from medchain.demo import Cast, NetworkStage, Story
from medchain.node import NetNode
from medchain.types import MedchainError, Receipt, Tx, tx_id
from tests.api.harness import FakeNode, make_chain, served, signed

VALIDATOR = AccountKeys.generate()


@pytest.fixture(scope="module")
def stage() -> Iterator[NetworkStage]:
    with served(lambda: FakeNode(make_chain(VALIDATOR))) as node:
        network = NetworkStage([NetNode(node.url, node.url, None)], bank=VALIDATOR)
        try:
            yield network
        finally:
            network.close()


def _transfer(stage: NetworkStage) -> tuple[Tx, Receipt]:
    nonce = stage.chain.account(VALIDATOR.address).nonce
    tx = signed(VALIDATOR, nonce, "accounts.transfer", TransferArgs(b"\x01" * 20, 1))
    return tx, stage.chain.submit(tx)


def test_a_committed_transaction_is_found_and_its_replay_answered(stage: NetworkStage) -> None:
    tx, receipt = _transfer(stage)
    height, found = stage.find_tx(tx_id(tx))
    assert found == tx and height == stage.chain.status().height
    assert stage.submit_raw(tx.encoded) == receipt
    with pytest.raises(MedchainError, match="is not on"):
        stage.find_tx(b"\x00" * 32)


def test_unchanged_holds_until_a_transaction_is_committed(stage: NetworkStage) -> None:
    before = stage.snapshot()
    claim, holds = stage.unchanged(before)
    assert holds and "the state root did not move" in claim
    _transfer(stage)
    assert stage.unchanged(before)[1] is False


def test_one_node_not_started_here_skips_comparing_and_restarting(stage: NetworkStage) -> None:
    out = io.StringIO()
    story = Story(Console(file=out, width=150), lambda entries, names: "")
    stage.agree(story)
    cast = Cast(*(AccountKeys.generate() for _ in range(5)))
    stage.restart(story, cast, b"\x00" * 16)
    told = out.getvalue()
    assert "one node known" in told and "kills and restarts only nodes it started" in told
    assert stage.storage_files() is None
