"""LocalStage on a LocalChain on disk: the chain checks the story makes, and the
database files it searches for the keyword."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from medchain.app import TransferArgs
from medchain.crypto import AccountKeys
from medchain.demo import LocalStage
from medchain.node import LocalChain
from medchain.types import Allocation, ChainParams, Genesis, GenesisValidator, MedchainError, tx_id
from tests.api.harness import signed


@pytest.fixture
def stage(tmp_path: Path) -> Iterator[LocalStage]:
    validator = AccountKeys.generate()
    genesis = Genesis(
        "medchain-demo",
        1_700_000_000_000,
        ChainParams(),
        allocations=(Allocation(validator.address, 1_000),),
        validators=(GenesisValidator(validator.public_key, "v0"),),
    )
    chain = LocalChain.create(tmp_path / "chain", genesis, validator)
    try:
        yield LocalStage(chain, tmp_path / "chain")
    finally:
        chain.close()


def test_a_committed_transaction_is_found_and_nothing_else_moves(stage: LocalStage) -> None:
    before = stage.snapshot()
    assert stage.unchanged(before) == ("height and state root did not move", True)
    tx = signed(stage.bank, 0, "accounts.transfer", TransferArgs(b"\x01" * 20, 1), "medchain-demo")
    receipt = stage.submit_raw(tx.encoded)
    assert receipt.ok and stage.find_tx(tx_id(tx)) == (before[0] + 1, tx)
    assert stage.unchanged(before)[1] is False
    with pytest.raises(MedchainError, match="is not on the chain"):
        stage.find_tx(b"\x00" * 32)


def test_the_database_files_are_those_of_its_home(stage: LocalStage) -> None:
    files = stage.storage_files()
    assert files and all(f.parent == stage.home for f in files)
    assert stage.peers() == []
