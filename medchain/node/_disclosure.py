"""What a node records when it serves a read: one `Disclosure` per authorised read of
a record's wraps or ciphertext, a research copy, a search or the vitals.

The API produces them (after it has checked the signed read request) and hands them
to the node's `DisclosureLog`, which keeps them append-only and hash-chained, with its
head committed on chain, so that a patient can be told who read what, when, through
which node and for which purpose.
"""

from __future__ import annotations

from typing import Protocol

from medchain.types import Disclosure


class DisclosureLog(Protocol):
    def append(self, disclosure: Disclosure) -> None:
        """Record one served read; must not fail the read unless the log cannot be
        written (then the read is refused: a read the log misses is a hidden one)."""
        ...


class MemoryDisclosureLog:
    """Keeps disclosures in a list: nodes without a data directory, and tests."""

    def __init__(self) -> None:
        self.entries: list[Disclosure] = []

    def append(self, disclosure: Disclosure) -> None:
        self.entries.append(disclosure)
