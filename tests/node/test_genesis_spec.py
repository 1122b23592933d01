"""The specs of a new genesis as an operator types them: parsed, or refused with an
error that names the option and the expected shape."""

from __future__ import annotations

import pytest

from medchain.crypto import AccountKeys
from medchain.node import parse_allocations, parse_params, parse_validators
from medchain.types import Allocation, ChainParams, GenesisValidator, MedchainError


def test_validators_keep_their_order_and_names() -> None:
    a, b = AccountKeys.generate(), AccountKeys.generate()
    specs = [f"alpha={a.public_key.hex()}", f" beta = {b.public_key.hex()} "]
    assert parse_validators(specs) == (
        GenesisValidator(a.public_key, "alpha"),
        GenesisValidator(b.public_key, "beta"),
    )


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["nokey"], "expected NAME=KEYHEX"),
        (["a=00ff"], "the key is 64 hex digits"),
        (["a=" + "zz" * 32], "the key is 64 hex digits"),
        (["a={k}", "b={k}"], "a key is listed twice"),
        (["a={k}", "a={j}"], "a name is listed twice"),
    ],
)
def test_bad_validator_specs_are_refused(specs: list[str], message: str) -> None:
    k, j = AccountKeys.generate().public_key.hex(), AccountKeys.generate().public_key.hex()
    with pytest.raises(MedchainError, match=message):
        parse_validators([s.format(k=k, j=j) for s in specs])


def test_allocations_fund_addresses() -> None:
    keys = AccountKeys.generate()
    assert parse_allocations([f"{keys.address_text}=1000"]) == (Allocation(keys.address, 1000),)


@pytest.mark.parametrize(
    ("amount", "message"),
    [("0", "positive whole number"), ("-5", "positive whole number"), ("", "ADDRESS=AMOUNT")],
)
def test_bad_allocations_are_refused(amount: str, message: str) -> None:
    address = AccountKeys.generate().address_text
    with pytest.raises(MedchainError, match=message):
        parse_allocations([f"{address}={amount}"])


def test_an_address_funded_twice_is_refused() -> None:
    address = AccountKeys.generate().address_text
    with pytest.raises(MedchainError, match="listed twice in --alloc"):
        parse_allocations([f"{address}=1", f"{address}=2"])


def test_params_replace_the_defaults_they_name() -> None:
    params = parse_params("dpos", ["min_fee=2", "max_block_txs=100"])
    assert params == ChainParams(consensus="dpos", min_fee=2, max_block_txs=100)
    assert parse_params("pbft", []) == ChainParams(consensus="pbft")


@pytest.mark.parametrize(
    ("consensus", "spec", "message"),
    [
        ("pbft", "block_size=1", "not a chain parameter"),
        ("pbft", "consensus=1", "not a chain parameter"),
        ("pbft", "min_fee=-1", "whole number from 0"),
        ("pbft", f"min_fee={2**63}", "whole number from 0"),
        ("pbft", "min_fee", "NAME=INTEGER"),
        ("raft", "min_fee=1", "raft"),
    ],
)
def test_bad_params_are_refused(consensus: str, spec: str, message: str) -> None:
    with pytest.raises(MedchainError, match=message):
        parse_params(consensus, [spec])
