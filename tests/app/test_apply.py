"""Transaction validity: every way a transaction can be bad is a named rejection
that leaves the state exactly as it was."""

from __future__ import annotations

import dataclasses

import pytest

from medchain.app import (
    FeeTooLow,
    InsufficientFunds,
    InvalidBlock,
    InvalidSignature,
    MalformedTx,
    NonceGap,
    NonceReused,
    TransferArgs,
    TxRejected,
    TxTooLarge,
    UnknownMethod,
    WrongChain,
    apply_tx,
    decode_tx,
    get_account,
)
from medchain.crypto import AccountKeys
from medchain.types import ChainParams, Tx, encode

from .conftest import World


def _rejects(world: World, tx: Tx, error: type[TxRejected]) -> TxRejected:
    root = world.ledger.state_root()
    before = world.ledger.state.committed()
    with pytest.raises(error) as info:
        apply_tx(world.ledger.state, world.context(), tx)
    # apply_tx outside a block must not have written anything either way
    assert world.ledger.state.committed() == before
    with pytest.raises(InvalidBlock):
        world.ledger.execute_block(world.context(), [tx])
    assert world.ledger.state_root() == root
    assert info.value.message
    return info.value


def test_transfer_moves_tokens_and_consumes_the_nonce(world: World, rich: AccountKeys) -> None:
    bob = AccountKeys.generate()
    receipt = world.ok(rich, "accounts.transfer", TransferArgs(bob.address, 300))
    assert receipt.events[0].kind == "transfer"
    assert get_account(world.ledger.state, bob.address).balance == 300
    assert get_account(world.ledger.state, rich.address).nonce == 1
    assert get_account(world.ledger.state, rich.address).balance == 1_000_000 - 300


def test_replay_is_rejected(world: World, rich: AccountKeys) -> None:
    bob = AccountKeys.generate()
    tx = world.tx(rich, "accounts.transfer", TransferArgs(bob.address, 10))
    world.run(tx)
    error = _rejects(world, tx, NonceReused)
    assert "already used" in error.message
    assert get_account(world.ledger.state, bob.address).balance == 10


def test_resigned_by_someone_else_is_rejected(world: World, rich: AccountKeys) -> None:
    thief = AccountKeys.generate()
    tx = world.tx(rich, "accounts.transfer", TransferArgs(thief.address, 10))
    forged = dataclasses.replace(tx, signature=thief.sign(tx.signing_bytes()))
    _rejects(world, forged, InvalidSignature)


def test_tampered_arguments_break_the_signature(world: World, rich: AccountKeys) -> None:
    thief = AccountKeys.generate()
    tx = world.tx(rich, "accounts.transfer", TransferArgs(thief.address, 10))
    tampered = dataclasses.replace(tx, args=encode(TransferArgs(thief.address, 999_999)))
    _rejects(world, tampered, InvalidSignature)


def test_nonce_from_the_future_is_rejected(world: World, rich: AccountKeys) -> None:
    tx = world.tx(
        rich, "accounts.transfer", TransferArgs(AccountKeys.generate().address, 1), nonce=5
    )
    _rejects(world, tx, NonceGap)


def test_other_chain_is_rejected(world: World, rich: AccountKeys) -> None:
    tx = world.tx(rich, "accounts.transfer", TransferArgs(AccountKeys.generate().address, 1))
    other = dataclasses.replace(tx, chain_id="another-chain")
    other = dataclasses.replace(other, signature=rich.sign(other.signing_bytes()))
    _rejects(world, other, WrongChain)


def test_unknown_method_is_rejected(world: World, rich: AccountKeys) -> None:
    _rejects(
        world,
        world.tx(rich, "records.delete_everything", TransferArgs(b"\x00" * 20, 1)),
        UnknownMethod,
    )


def test_malformed_arguments_are_rejected(world: World, rich: AccountKeys) -> None:
    tx = world.tx(rich, "accounts.transfer", TransferArgs(b"\x00" * 20, 1))
    garbage = dataclasses.replace(tx, args=b"\xff\x00garbage")
    garbage = dataclasses.replace(garbage, signature=rich.sign(garbage.signing_bytes()))
    _rejects(world, garbage, MalformedTx)


def test_oversized_transaction_is_rejected(world: World, rich: AccountKeys) -> None:
    limit = world.ledger.genesis.params.max_tx_bytes
    tx = world.tx(
        rich, "accounts.transfer", TransferArgs(AccountKeys.generate().address, 1, "x" * 200)
    )
    big = dataclasses.replace(tx, args=tx.args + b"\x00" * limit)
    _rejects(world, big, TxTooLarge)
    with pytest.raises(TxTooLarge):
        decode_tx(encode(big), world.ledger.genesis.params)


def test_malformed_bytes_are_rejected_by_name() -> None:
    with pytest.raises(MalformedTx):
        decode_tx(b"\xc3\x01\x02", ChainParams())
    with pytest.raises(MalformedTx):
        decode_tx(b"not rlp at all \xff", ChainParams())


def test_bad_sender_key_is_rejected(world: World, rich: AccountKeys) -> None:
    tx = world.tx(rich, "accounts.transfer", TransferArgs(b"\x00" * 20, 1))
    _rejects(world, dataclasses.replace(tx, sender=b"\x01" * 31), MalformedTx)


def test_fee_rules(validator: AccountKeys, rich: AccountKeys) -> None:
    from medchain.app import Ledger
    from medchain.types import Allocation, Genesis

    genesis = Genesis("medchain-test", 0, ChainParams(min_fee=5), (Allocation(rich.address, 100),))
    world = World(Ledger(genesis))
    poor = AccountKeys.generate()
    _rejects(
        world, world.tx(rich, "accounts.transfer", TransferArgs(poor.address, 1), fee=4), FeeTooLow
    )
    _rejects(
        world,
        world.tx(poor, "accounts.transfer", TransferArgs(rich.address, 1), fee=5),
        InsufficientFunds,
    )
    (receipt,) = world.run(
        world.tx(rich, "accounts.transfer", TransferArgs(poor.address, 10), fee=5)
    )
    assert receipt.ok
    state = world.ledger.state
    assert get_account(state, rich.address).balance == 85
    assert get_account(state, b"\x07" * 20).balance == 5  # the proposer earns the fee


def test_refused_call_keeps_fee_and_nonce_but_nothing_else(world: World, rich: AccountKeys) -> None:
    poor = AccountKeys.generate()
    receipt = world.call(poor, "accounts.transfer", TransferArgs(rich.address, 50))
    assert not receipt.ok
    assert receipt.code == "balance_too_low"
    assert "fund the account" in receipt.message
    assert get_account(world.ledger.state, poor.address).nonce == 1
    assert get_account(world.ledger.state, rich.address).balance == 1_000_000


def test_invalid_transaction_rejects_the_whole_block(world: World, rich: AccountKeys) -> None:
    bob = AccountKeys.generate()
    good = world.tx(rich, "accounts.transfer", TransferArgs(bob.address, 5))
    bad = world.tx(rich, "accounts.transfer", TransferArgs(bob.address, 5), nonce=7)
    root = world.ledger.state_root()
    with pytest.raises(InvalidBlock, match="transaction 1"):
        world.ledger.execute_block(world.context(), [good, bad])
    assert world.ledger.state_root() == root
    assert get_account(world.ledger.state, bob.address).balance == 0
