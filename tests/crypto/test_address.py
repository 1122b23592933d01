"""Addresses: derived from the public key, readable, and typo-proof."""

from __future__ import annotations

import bech32
import pytest
from hypothesis import given
from hypothesis import strategies as st

from medchain.crypto import (
    AccountKeys,
    InvalidAddress,
    address_from_public_key,
    format_address,
    parse_address,
)


@given(st.binary(min_size=20, max_size=20))
def test_round_trip(raw: bytes) -> None:
    text = format_address(raw)
    assert text.startswith("mc1") and parse_address(text) == raw


@given(st.binary(min_size=20, max_size=20), st.data())
def test_single_character_typo_is_caught(raw: bytes, data: st.DataObject) -> None:
    text = format_address(raw)
    index = data.draw(st.integers(min_value=3, max_value=len(text) - 1))
    replacement = data.draw(st.sampled_from([c for c in bech32.CHARSET if c != text[index]]))
    with pytest.raises(InvalidAddress, match="checksum"):
        parse_address(text[:index] + replacement + text[index + 1 :])


def test_address_depends_only_on_the_signing_key() -> None:
    keys = AccountKeys.generate()
    assert keys.address == address_from_public_key(keys.public_key)
    assert len(keys.address) == 20
    assert address_from_public_key(b"\x01" * 32) != address_from_public_key(b"\x02" * 32)


def _five_bit(data: bytes) -> list[int]:
    words = bech32.convertbits(data, 8, 5)
    assert words is not None
    return words


def test_foreign_prefix_and_wrong_length_are_refused() -> None:
    other = bech32.bech32_encode("bc", _five_bit(b"\x00" * 20))
    with pytest.raises(InvalidAddress, match="mc1"):
        parse_address(other)
    short = bech32.bech32_encode("mc", _five_bit(b"\x00" * 10))
    with pytest.raises(InvalidAddress, match="20-byte"):
        parse_address(short)
    with pytest.raises(InvalidAddress):
        format_address(b"\x00" * 19)
