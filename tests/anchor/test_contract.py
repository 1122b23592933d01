"""Anchor.vy on eth-tester, driven with plain web3 (independent of the client)."""

from __future__ import annotations

import json
import os
from itertools import count
from typing import Any, cast

import pytest

# eth-tester ships no type hints (no py.typed, no stubs)
from eth_tester.exceptions import TransactionFailed  # type: ignore[import-untyped]
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from medchain.anchor import CheckpointSignature, chain_key, encode_signatures, load_artifact
from medchain.anchor.build import ARTIFACT, compile_contract, render
from tests.anchor.conftest import Chain

_ids = count()


@pytest.fixture(scope="module")
def anchor(chain: Chain) -> Contract:
    w3 = chain.w3
    artifact = load_artifact()
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor().transact({"from": w3.eth.accounts[0]})
    )
    return cast(Contract, w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"]))


@pytest.fixture
def chain_id() -> str:
    """A fresh working chain per test, on the module's one contract."""
    return f"medchain-test-{next(_ids)}"


def people(chain: Chain) -> tuple[str, str, str]:
    """Admin, submitter, stranger: unlocked eth-tester accounts."""
    accounts = list(chain.w3.eth.accounts)
    return accounts[1], accounts[2], accounts[3]


GAS = 8_000_000  # given, so eth-tester does not run every call twice to estimate it


def send(w3: Web3, fn: Any, sender: str) -> Any:
    return w3.eth.wait_for_transaction_receipt(fn.transact({"from": sender, "gas": GAS}))


def registered(chain: Chain, anchor: Contract, chain_id: str) -> tuple[str, str, str]:
    admin, submitter, stranger = people(chain)
    send(chain.w3, anchor.functions.register_chain(chain_id, [submitter]), admin)
    return admin, submitter, stranger


def checkpoint() -> tuple[bytes, bytes, bytes]:
    sigs = tuple(CheckpointSignature(os.urandom(32), os.urandom(64)) for _ in range(3))
    return os.urandom(32), os.urandom(32), encode_signatures(sigs)


def test_artifact_is_what_the_pinned_compiler_makes() -> None:
    fresh = compile_contract()
    stored = json.loads(ARTIFACT.read_text())
    assert fresh["vyper"] == stored["vyper"]
    assert fresh["abi"] == stored["abi"]
    assert fresh["bytecode"] == stored["bytecode"]
    assert render(fresh) == ARTIFACT.read_text()  # the build writes it byte for byte


def test_register_makes_the_first_registrant_admin(
    chain: Chain, anchor: Contract, chain_id: str
) -> None:
    admin, submitter, stranger = people(chain)
    receipt = send(chain.w3, anchor.functions.register_chain(chain_id, [submitter]), admin)
    key = chain_key(chain_id)
    assert anchor.functions.chain_key(chain_id).call() == key
    assert anchor.functions.admin(key).call() == admin
    assert anchor.functions.chain_id(key).call() == chain_id
    assert anchor.functions.submitters(chain_id).call() == [submitter]
    (event,) = anchor.events.ChainRegistered().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {"chain_key": key, "chain_id": chain_id, "admin": admin}
    with pytest.raises(TransactionFailed, match="chain already registered"):
        anchor.functions.register_chain(chain_id, [stranger]).transact({"from": stranger})
    with pytest.raises(TransactionFailed, match="empty chain id"):
        anchor.functions.register_chain("", [stranger]).transact({"from": stranger})


def test_only_the_admin_replaces_submitters(chain: Chain, anchor: Contract, chain_id: str) -> None:
    admin, submitter, stranger = registered(chain, anchor, chain_id)
    with pytest.raises(TransactionFailed, match="only the chain admin"):
        anchor.functions.set_submitters(chain_id, [stranger]).transact({"from": stranger})
    with pytest.raises(TransactionFailed, match="chain not registered"):
        anchor.functions.set_submitters(chain_id + "x", [stranger]).transact({"from": admin})
    send(chain.w3, anchor.functions.set_submitters(chain_id, [stranger]), admin)
    assert anchor.functions.submitters(chain_id).call() == [stranger]
    block_hash, state_root, sigs = checkpoint()
    with pytest.raises(TransactionFailed, match="not a submitter"):  # the replaced one
        anchor.functions.anchor(chain_id, 1, block_hash, state_root, sigs).transact(
            {"from": submitter}
        )
    send(chain.w3, anchor.functions.anchor(chain_id, 1, block_hash, state_root, sigs), stranger)


def test_only_submitters_anchor(chain: Chain, anchor: Contract, chain_id: str) -> None:
    admin, _, stranger = registered(chain, anchor, chain_id)
    block_hash, state_root, sigs = checkpoint()
    for sender in (admin, stranger):  # the admin too: it is not listed
        with pytest.raises(TransactionFailed, match="not a submitter"):
            anchor.functions.anchor(chain_id, 10**9, block_hash, state_root, sigs).transact(
                {"from": sender}
            )
    with pytest.raises(TransactionFailed, match="chain not registered"):
        anchor.functions.anchor("unregistered", 1, block_hash, state_root, sigs).transact(
            {"from": stranger}
        )
    assert anchor.functions.latest_height(chain_id).call() == 0


def test_anchor_is_stored_and_announced(chain: Chain, anchor: Contract, chain_id: str) -> None:
    _, submitter, _ = registered(chain, anchor, chain_id)
    block_hash, state_root, sigs = checkpoint()
    receipt = send(
        chain.w3, anchor.functions.anchor(chain_id, 8, block_hash, state_root, sigs), submitter
    )
    assert anchor.functions.latest_height(chain_id).call() == 8
    assert anchor.functions.anchor_at(chain_id, 8).call() == (
        block_hash,
        state_root,
        sigs,
        submitter,
        receipt["blockNumber"],
    )
    assert anchor.functions.anchor_at(chain_id, 7).call()[4] == 0  # not anchored
    (event,) = anchor.events.Anchored().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {
        "chain_key": chain_key(chain_id),
        "height": 8,
        "block_hash": block_hash,
        "state_root": state_root,
        "signatures": sigs,
        "submitter": submitter,
    }


def test_heights_strictly_increase_per_chain(chain: Chain, anchor: Contract, chain_id: str) -> None:
    _, submitter, _ = registered(chain, anchor, chain_id)
    other = chain_id + "-other"
    registered(chain, anchor, other)
    send(chain.w3, anchor.functions.anchor(chain_id, 20, *checkpoint()), submitter)
    for height in (19, 10):
        with pytest.raises(TransactionFailed, match="height not above the latest anchor"):
            anchor.functions.anchor(chain_id, height, *checkpoint()).transact({"from": submitter})
    with pytest.raises(TransactionFailed, match="height must be positive"):
        anchor.functions.anchor(chain_id, 0, *checkpoint()).transact({"from": submitter})
    send(chain.w3, anchor.functions.anchor(chain_id, 30, *checkpoint()), submitter)
    send(chain.w3, anchor.functions.anchor(other, 5, *checkpoint()), submitter)  # its own heights
    assert anchor.functions.latest_height(chain_id).call() == 30
    assert anchor.functions.latest_height(other).call() == 5


def test_the_same_anchor_twice_reverts(chain: Chain, anchor: Contract, chain_id: str) -> None:
    _, submitter, _ = registered(chain, anchor, chain_id)
    block_hash, state_root, sigs = checkpoint()
    send(chain.w3, anchor.functions.anchor(chain_id, 4, block_hash, state_root, sigs), submitter)
    send(chain.w3, anchor.functions.anchor(chain_id, 8, *checkpoint()), submitter)
    other_sigs = checkpoint()[2]  # other signers of the same checkpoint: still the same
    for again in (sigs, other_sigs):
        with pytest.raises(TransactionFailed, match="already anchored"):
            anchor.functions.anchor(chain_id, 4, block_hash, state_root, again).transact(
                {"from": submitter}
            )
    assert anchor.functions.conflict_count(chain_id).call() == 0


@pytest.mark.parametrize("differs", ["block_hash", "state_root"])
def test_a_different_anchor_is_evidence_and_never_overwrites(
    chain: Chain, anchor: Contract, chain_id: str, differs: str
) -> None:
    _, submitter, _ = registered(chain, anchor, chain_id)
    block_hash, state_root, sigs = checkpoint()
    send(chain.w3, anchor.functions.anchor(chain_id, 4, block_hash, state_root, sigs), submitter)
    first = anchor.functions.anchor_at(chain_id, 4).call()
    send(chain.w3, anchor.functions.anchor(chain_id, 6, *checkpoint()), submitter)

    fork_hash, fork_root, fork_sigs = checkpoint()
    if differs == "block_hash":
        fork_root = state_root
    else:
        fork_hash = block_hash
    receipt = send(
        chain.w3, anchor.functions.anchor(chain_id, 4, fork_hash, fork_root, fork_sigs), submitter
    )
    assert receipt["status"] == 1
    assert anchor.functions.anchor_at(chain_id, 4).call() == first
    assert anchor.functions.latest_height(chain_id).call() == 6
    assert anchor.events.Anchored().process_receipt(receipt, errors=DISCARD) == ()
    (event,) = anchor.events.Conflict().process_receipt(receipt, errors=DISCARD)
    assert event["args"] == {
        "chain_key": chain_key(chain_id),
        "height": 4,
        "index": 0,
        "block_hash": fork_hash,
        "state_root": fork_root,
        "signatures": fork_sigs,
        "submitter": submitter,
    }
    assert anchor.functions.conflict_count(chain_id).call() == 1
    assert anchor.functions.conflict(chain_id, 0).call() == (
        4,
        (fork_hash, fork_root, fork_sigs, submitter, receipt["blockNumber"]),
    )
    with pytest.raises(TransactionFailed, match="no such conflict"):
        anchor.functions.conflict(chain_id, 1).call()


def test_sixty_four_validators_signatures_fit(
    chain: Chain, anchor: Contract, chain_id: str
) -> None:
    _, submitter, _ = registered(chain, anchor, chain_id)
    sigs = encode_signatures(
        tuple(CheckpointSignature(os.urandom(32), os.urandom(64)) for _ in range(64))
    )
    block_hash, state_root, _ = checkpoint()
    send(chain.w3, anchor.functions.anchor(chain_id, 1, block_hash, state_root, sigs), submitter)
    assert anchor.functions.anchor_at(chain_id, 1).call()[2] == sigs
