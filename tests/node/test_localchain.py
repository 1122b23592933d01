"""LocalChain: sealing, persistence, reopening, and determinism across replicas."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Never

import pytest

from medchain.app import (
    NonceReused,
    RegisterArgs,
    Role,
    TransferArgs,
    TreeNode,
    UnwarrantArgs,
)
from medchain.crypto import AccountKeys, verify_signature
from medchain.node import LocalChain, TxFailed
from medchain.store import StoredState, StoreError, cell_roots, tree_nodes_of
from medchain.types import (
    Allocation,
    Genesis,
    GenesisValidator,
    Tx,
    block_hash,
    commit_signing_bytes,
    encode,
)


def _clock() -> Callable[[], int]:
    ticks = itertools.count(1_800_000_000_000, 1_000)
    return lambda: next(ticks)


def _genesis(validator: AccountKeys, funded: AccountKeys) -> Genesis:
    return Genesis(
        "medchain-test",
        1_700_000_000_000,
        allocations=(Allocation(funded.address, 10_000),),
        validators=(GenesisValidator(validator.public_key, "v0"),),
    )


def _signed(keys: AccountKeys, nonce: int, method: str, args: object) -> Tx:
    tx = Tx("medchain-test", nonce, keys.public_key, 0, method, encode(args))
    return Tx(
        "medchain-test", nonce, keys.public_key, 0, method, tx.args, keys.sign(tx.signing_bytes())
    )


def _workload(funded: AccountKeys, people: list[AccountKeys]) -> list[Tx]:
    txs = [
        _signed(funded, i, "accounts.transfer", TransferArgs(p.address, 10 + i))
        for i, p in enumerate(people)
    ]
    txs += [
        _signed(p, 0, "registry.register", RegisterArgs(Role.PATIENT, "", p.encryption_public_key))
        for p in people
    ]
    return txs


def test_replicas_fed_the_same_transactions_agree_at_every_height() -> None:
    validator, funded = AccountKeys.generate(), AccountKeys.generate()
    people = [AccountKeys.generate() for _ in range(6)]
    genesis = _genesis(validator, funded)
    one = LocalChain.in_memory(genesis, validator, _clock())
    two = LocalChain.in_memory(genesis, validator, _clock())
    assert one.latest_block() == two.latest_block()
    for tx in _workload(funded, people):
        one.submit(tx)
        two.submit(tx)
        assert one.latest_block().header.state_root == two.latest_block().header.state_root
        assert one.latest_block() == two.latest_block()
    roots = {one.block_at(h).header.state_root for h in range(one.height + 1)}  # type: ignore[union-attr]
    assert len(roots) == one.height + 1  # every block changed the state


def test_blocks_chain_and_carry_a_valid_certificate() -> None:
    validator, funded = AccountKeys.generate(), AccountKeys.generate()
    chain = LocalChain.in_memory(_genesis(validator, funded), validator, _clock())
    chain.submit(_signed(funded, 0, "accounts.transfer", TransferArgs(validator.address, 5)))
    block = chain.latest_block()
    parent = chain.block_at(0)
    assert parent is not None and block.header.prev_hash == block_hash(parent.header)
    (sig,) = block.certificate.signatures
    digest = block_hash(block.header)
    message = commit_signing_bytes("medchain-test", block.height, 0, digest)
    assert block.certificate.block_hash == digest
    assert verify_signature(sig.validator, message, sig.signature)


def test_refused_and_rejected_transactions_record_nothing() -> None:
    validator, funded = AccountKeys.generate(), AccountKeys.generate()
    chain = LocalChain.in_memory(_genesis(validator, funded), validator, _clock())
    tx = _signed(funded, 0, "accounts.transfer", TransferArgs(validator.address, 5))
    chain.submit(tx)
    height, root = chain.height, chain.ledger.state_root()
    with pytest.raises(NonceReused):
        chain.submit(tx)
    with pytest.raises(TxFailed) as failed:
        chain.submit(
            _signed(funded, 1, "records.unwarrant", UnwarrantArgs(b"\x01" * 16, validator.address))
        )
    assert failed.value.code == "unknown_record"
    assert (chain.height, chain.ledger.state_root()) == (height, root)
    assert chain.account(funded.address).nonce == 1  # a refused call spends no nonce


def test_reopening_restores_exact_state(tmp_path: Path) -> None:
    validator, funded = AccountKeys.generate(), AccountKeys.generate()
    people = [AccountKeys.generate() for _ in range(3)]
    home = tmp_path / "chain"
    chain = LocalChain.create(home, _genesis(validator, funded), validator)
    receipts = [chain.submit(tx) for tx in _workload(funded, people)]
    state, tip = chain.ledger.state.committed(), chain.latest_block()
    chain.close()

    again = LocalChain.open(home)
    assert again.ledger.state.committed() == state
    assert again.latest_block() == tip
    assert all(again.receipt(r.tx_id) == r for r in receipts)
    again.submit(
        _signed(funded, len(people), "accounts.transfer", TransferArgs(people[0].address, 1))
    )
    assert again.height == tip.height + 1
    again.close()


def _closed_chain_with_a_block(tmp_path: Path) -> Path:
    validator, funded = AccountKeys.generate(), AccountKeys.generate()
    home = tmp_path / "chain"
    chain = LocalChain.create(home, _genesis(validator, funded), validator)
    chain.submit(_signed(funded, 0, "accounts.transfer", TransferArgs(validator.address, 5)))
    chain.close()
    return home


def test_reopening_reads_the_stored_tree_instead_of_the_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart costs the upper tier's rows, not a read or a rehash of every entry."""
    home = _closed_chain_with_a_block(tmp_path)
    tree_reads: list[int] = []
    read_tree = StoredState.tree_nodes

    def counted(backend: StoredState) -> list[TreeNode]:
        nodes = read_tree(backend)
        tree_reads.append(len(nodes))
        return nodes

    def refused(*_: object) -> Never:
        raise AssertionError("opening the chain read the state's entries")

    with monkeypatch.context() as patch:
        patch.setattr(StoredState, "tree_nodes", counted)
        patch.setattr(StoredState, "entries", refused)
        patch.setattr(StoredState, "cell_entries", refused)
        chain = LocalChain.open(home)
    assert tree_reads and tree_reads[0] > 0
    assert chain.ledger.state_root() == chain.latest_block().header.state_root
    chain.close()


def test_a_tampered_state_tree_is_detected_on_open(tmp_path: Path) -> None:
    """Opening reads the stored tree instead of rehashing every entry: a bucket root
    that does not hash up to the stored root is found there and then."""
    home = _closed_chain_with_a_block(tmp_path)
    with sqlite3.connect(home / "chain.sqlite") as db:
        (index,) = db.execute("SELECT idx FROM state_tree WHERE level = 4 LIMIT 1").fetchone()
        db.execute(
            "UPDATE state_tree SET hash = ? WHERE level = 4 AND idx = ?", (b"\xc0" * 32, index)
        )
    with pytest.raises(StoreError, match=r"do not hash up .* damaged"):
        LocalChain.open(home)


def test_a_state_tree_of_another_state_is_detected_on_open(tmp_path: Path) -> None:
    """A tree consistent in itself whose root is not the latest block's."""
    home = _closed_chain_with_a_block(tmp_path)
    with sqlite3.connect(home / "chain.sqlite") as db:
        db.execute(
            "UPDATE state SET value = ? WHERE cell = (SELECT MIN(cell) FROM state)", (b"\xc0",)
        )
        rows = db.execute("SELECT cell, key, value FROM state ORDER BY cell, key").fetchall()
        nodes = tree_nodes_of(cell_roots((b, bytes(k), bytes(v)) for b, k, v in rows))
        db.execute("DELETE FROM state_tree")
        db.executemany("INSERT INTO state_tree(level, idx, hash) VALUES (?, ?, ?)", nodes)
    with pytest.raises(StoreError, match="does not match the state root of the latest block"):
        LocalChain.open(home)


def test_open_without_a_chain_says_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="medchain init"):
        LocalChain.open(tmp_path)
