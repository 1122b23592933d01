"""The hashes of a disclosure log: what a node logs for each read, the salted hash of
one entry and the chain of heads over them, and the check of a list of entry hashes
against the heads the node committed on chain.

Pure functions, shared by the node that keeps the log and by every client that checks
it: an entry hash reveals nothing (the salt is random), so a node publishes them all
and anyone recomputes the heads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from medchain.node._disclosure import Disclosure
from medchain.types import encode, tagged_hash

HEAD_ZERO = bytes(32)
"""head_0: the head of an empty log."""
SALT_SIZE = 16


@dataclass(frozen=True, slots=True)
class LoggedDisclosure:
    """One entry of a node's log: the read, the node that served it, and a random salt
    that keeps its hash from being guessed."""

    disclosure: Disclosure
    node: bytes
    """Address of the node that served the read (its validator account)."""
    salt: bytes


def entry_hash(entry: LoggedDisclosure) -> bytes:
    return tagged_hash("medchain/disclosure", encode(entry))


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
