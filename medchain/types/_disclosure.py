"""What a node records when it serves a read, and the hashes of its disclosure log.

A `Disclosure` is one served read of a record's wraps or ciphertext, a research copy,
a search or the vitals; a node's log keeps each as a `LoggedDisclosure` (with the
node's address and a random salt), whose salted hash it chains into heads from
`HEAD_ZERO` and commits on chain. The hashing lives here, below both the node that
keeps the log and the clients that check it: an entry hash reveals nothing (the salt
is random), so a node publishes them all and anyone recomputes the heads.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from medchain.types._codec import encode
from medchain.types._hashing import tagged_hash

HEAD_ZERO = bytes(32)
"""head_0: the head of an empty log."""
SALT_SIZE = 16


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
    DEVICE = "device"
    """The device that took a reading, asking the edge gateway about it."""


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


@dataclass(frozen=True, slots=True)
class LoggedDisclosure:
    """One entry of a node's log: the read, the node that served it, and a random salt
    that keeps its hash from being guessed."""

    disclosure: Disclosure
    node: bytes
    """Address of the node that served the read (its validator account)."""
    salt: bytes


def entry_hash(entry: LoggedDisclosure) -> bytes:
    return encoded_entry_hash(encode(entry))


def encoded_entry_hash(encoded: bytes) -> bytes:
    """`entry_hash` of an entry already encoded (a log that stores the encoding too
    encodes each entry once)."""
    return tagged_hash("medchain/disclosure", encoded)


def next_head(head: bytes, hash_: bytes) -> bytes:
    """head_n from head_{n-1} and entry_hash_n."""
    return tagged_hash("medchain/disclosure-head", head, hash_)


def heads_of(hashes: Iterable[bytes], start: bytes = HEAD_ZERO) -> list[bytes]:
    """head_1 … head_n over `hashes` (entry hashes from seq 1, or after `start`)."""
    heads = []
    head = start
    for hash_ in hashes:
        head = next_head(head, hash_)
        heads.append(head)
    return heads


def first_disagreement(hashes: Sequence[bytes], commits: Iterable[tuple[int, bytes]]) -> int:
    """The first committed seq whose head the entry hashes (from seq 1) do not give, or
    that they do not reach; 0 if every commit in `commits` (seq, head) agrees."""
    heads = heads_of(hashes)
    for seq, head in sorted(commits):
        if seq < 1 or seq > len(heads) or heads[seq - 1] != head:
            return seq
    return 0
