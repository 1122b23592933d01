"""Fixed-length hex as people type it (medchain.types._hex)."""

from __future__ import annotations

from medchain.types import fixed_hex


def test_exactly_the_size_asked_for_in_hex_digits() -> None:
    assert fixed_hex("00ff" * 8, 16) == b"\x00\xff" * 8
    assert fixed_hex("  " + "AB" * 32 + "\n", 32) == b"\xab" * 32


def test_anything_else_is_none() -> None:
    for text in ("", "ab" * 31, "ab" * 33, "zz" * 32, "abc", "0x" + "ab" * 31):
        assert fixed_hex(text, 32) is None, text
