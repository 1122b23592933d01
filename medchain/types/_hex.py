"""Identifiers and keys as people type them: hex digits of a fixed length."""

from __future__ import annotations


def fixed_hex(text: str, size: int) -> bytes | None:
    """`text` as exactly `size` bytes written in hex digits (spaces around them are
    ignored), or None if it is anything else; callers say what they expected."""
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        return None
    return raw if len(raw) == size else None
