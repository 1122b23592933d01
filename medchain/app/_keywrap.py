"""Wrapped content keys as the chain stores them, and the rules they must follow.

The chain never sees a content key; it only checks that a version's wraps name
exactly the people who are meant to read it, once each, in a canonical order."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from medchain.app._errors import InvalidArgument, KeyWrapMismatch
from medchain.crypto import WRAPPED_KEY_SIZE, format_address


@dataclass(frozen=True, slots=True)
class KeyWrap:
    reader: bytes
    """Address of the reader this copy of the content key is wrapped for."""
    wrapped_key: bytes


def check_wraps(wraps: tuple[KeyWrap, ...], expected_readers: Iterable[bytes]) -> None:
    """Wraps must be sorted by reader, unique, well-sized, and cover exactly the readers."""
    readers = [w.reader for w in wraps]
    if readers != sorted(set(readers)):
        raise InvalidArgument("key wraps must be sorted by reader address with no duplicates")
    for wrap in wraps:
        if len(wrap.wrapped_key) != WRAPPED_KEY_SIZE:
            raise InvalidArgument(
                f"a wrapped key is {WRAPPED_KEY_SIZE} bytes (HPKE X25519 + AES-256-GCM); "
                f"got {len(wrap.wrapped_key)} for {format_address(wrap.reader)}"
            )
    expected = set(expected_readers)
    if set(readers) != expected:
        missing = ", ".join(format_address(a) for a in sorted(expected - set(readers)))
        extra = ", ".join(format_address(a) for a in sorted(set(readers) - expected))
        raise KeyWrapMismatch(
            "the content key must be wrapped for exactly the owner and the current readers"
            + (f"; missing: {missing}" if missing else "")
            + (f"; not authorised: {extra}" if extra else "")
            + " — refresh the record's reader list and encrypt again"
        )
