"""A new genesis from the specs an operator types (`NAME=KEYHEX` validators,
`ADDRESS=AMOUNT` allocations, `NAME=INTEGER` chain parameters), each checked with an
error that names the option and the shape it expects."""

from __future__ import annotations

import dataclasses

from medchain.consensus import engine_kind
from medchain.crypto import parse_address
from medchain.types import Allocation, ChainParams, GenesisValidator, MedchainError

MAX_PARAM = 2**63 - 1
"""The largest chain parameter the stores keep (SQLite's INTEGER)."""


def _pair(text: str, option: str, shape: str) -> tuple[str, str]:
    left, sep, right = text.rpartition("=")
    if not sep or not left.strip() or not right.strip():
        raise MedchainError(f"{option} {text!r}: expected {shape}")
    return left.strip(), right.strip()


def parse_validators(specs: list[str]) -> tuple[GenesisValidator, ...]:
    """`NAME=KEYHEX` specs (`--validator`), in order; names and keys each once."""
    validators = []
    for spec in specs:
        name, hex_key = _pair(spec, "--validator", "NAME=KEYHEX")
        try:
            key = bytes.fromhex(hex_key)
        except ValueError:
            key = b""
        if len(key) != 32:
            raise MedchainError(f"--validator {spec!r}: the key is 64 hex digits")
        validators.append(GenesisValidator(key, name))
    if len({v.public_key for v in validators}) < len(validators):
        raise MedchainError("a key is listed twice in --validator")
    if len({v.name for v in validators}) < len(validators):
        raise MedchainError("a name is listed twice in --validator")
    return tuple(validators)


def parse_allocations(specs: list[str]) -> tuple[Allocation, ...]:
    """`ADDRESS=AMOUNT` specs (`--alloc`); each address once, each amount positive."""
    allocations = []
    for spec in specs:
        address, amount = _pair(spec, "--alloc", "ADDRESS=AMOUNT")
        if not amount.isdigit() or int(amount) == 0:
            raise MedchainError(f"--alloc {spec!r}: the amount is a positive whole number")
        allocations.append(Allocation(parse_address(address), int(amount)))
    if len({a.address for a in allocations}) < len(allocations):
        raise MedchainError("an address is listed twice in --alloc")
    return tuple(allocations)


def parse_params(consensus: str, specs: list[str]) -> ChainParams:
    """The chain parameters for `consensus`, with the `NAME=INTEGER` specs (`--param`)
    in place of the defaults."""
    engine_kind(consensus)  # a clear error for an unknown engine
    numbers = {f.name for f in dataclasses.fields(ChainParams) if f.name != "consensus"}
    values: dict[str, int] = {}
    for spec in specs:
        name, value = _pair(spec, "--param", "NAME=INTEGER")
        if name not in numbers:
            raise MedchainError(
                f"--param {name!r} is not a chain parameter; known: {sorted(numbers)}"
            )
        if not (value.isascii() and value.isdigit()) or int(value) > MAX_PARAM:
            raise MedchainError(
                f"--param {spec!r}: the value is a whole number from 0 to {MAX_PARAM}"
            )
        values[name] = int(value)
    return ChainParams(consensus=consensus, **values)
