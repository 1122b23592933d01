from __future__ import annotations

import contextlib
import os

import pytest
import rlp
from hypothesis import given
from hypothesis import strategies as st

from medchain.anchor import CheckpointSignature, decode_signatures, encode_signatures
from medchain.types import DecodeError
from tests.hostile import DEEP, hostile


def signature() -> CheckpointSignature:
    return CheckpointSignature(os.urandom(32), os.urandom(64))


signatures = st.lists(
    st.builds(
        CheckpointSignature,
        st.binary(min_size=32, max_size=32),
        st.binary(min_size=64, max_size=64),
    ),
    max_size=8,
).map(tuple)


@given(signatures)
def test_round_trip_orders_by_validator(sigs: tuple[CheckpointSignature, ...]) -> None:
    decoded = decode_signatures(encode_signatures(sigs))
    assert decoded == tuple(sorted(sigs, key=lambda s: s.validator))


def test_encoding_does_not_depend_on_input_order() -> None:
    sigs = tuple(signature() for _ in range(4))
    assert encode_signatures(sigs) == encode_signatures(tuple(reversed(sigs)))


def test_sixty_four_validators_fit_the_contract_field() -> None:
    assert len(encode_signatures(tuple(signature() for _ in range(64)))) <= 8192


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff",  # truncated
        rlp.encode(b"not a list"),
        rlp.encode([b"flat"]),
        rlp.encode([[b"\x01" * 32]]),  # a pair without its signature
        rlp.encode([[b"\x01" * 31, b"\x02" * 64]]),
        rlp.encode([[b"\x01" * 32, b"\x02" * 63]]),
        rlp.encode([[b"\x01" * 32, [b"\x02" * 64]]]),
    ],
)
def test_decode_refuses_what_encode_never_writes(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_signatures(data)


@given(hostile(signatures.map(encode_signatures)))
def test_hostile_anchor_bytes_are_a_decode_error_never_a_crash(data: bytes) -> None:
    """What the verification chain holds is read, not trusted: deep nesting, huge length
    prefixes, wrong shapes and mutations of real anchors decode or raise DecodeError."""
    with contextlib.suppress(DecodeError):
        decode_signatures(data)


def test_deeply_nested_anchor_bytes_are_refused() -> None:
    with pytest.raises(DecodeError, match="nested deeper"):
        decode_signatures(DEEP)
