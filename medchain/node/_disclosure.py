"""What a node records when it serves a read: one `Disclosure` per authorised read of
a record's wraps or ciphertext, a research copy, a search or the vitals.

The API produces them (after it has checked the signed read request) and hands them
to the node's `DisclosureLog`, which keeps them append-only and hash-chained, with its
head committed on chain, so that a patient can be told who read what, when, through
which node and for which purpose.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class DisclosureKind(enum.StrEnum):
    WRAPS = "wraps"
    """A record version's key wraps."""
    BODY = "body"
    """A record version's ciphertext."""
    RESEARCH_COPY = "research_copy"
    """A research organisation's de-identified copy of a record."""
    SEARCH = "search"
    """A lookup in a patient's encrypted keyword index."""
    VITALS = "vitals"
    """A patient's bundles of device readings (or one bundle's ciphertext)."""


class ReadBasis(enum.StrEnum):
    """Why the node let the signer read."""

    OWNER = "owner"
    READER = "reader"
    PROXY = "proxy"
    EMERGENCY = "emergency"
    RESEARCH = "research"
    VITALS_READER = "vitals_reader"


@dataclass(frozen=True, slots=True)
class Disclosure:
    time_ms: int
    """The node's wall clock when it served the read (ms since the Unix epoch)."""
    reader: bytes
    """The account that signed the read request."""
    patient: bytes
    """Whose data was read."""
    kind: DisclosureKind
    purpose: str
    """The PurposeOfUse code the request named."""
    basis: ReadBasis
    record_id: bytes = b""
    """The record read; empty for a search or a vitals read."""
    version: int = 0
    """The version read; 0 when the read is not of one version."""
    on_behalf: bytes = b""
    """The patient a proxy read for (the reader acted as their proxy)."""
    detail: str = ""
    """What else identifies the read: a CID, a time range; never a secret."""


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
