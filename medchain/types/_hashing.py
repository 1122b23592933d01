"""Hashing (stdlib only, so every layer may use it): SHA-256 wherever the chain
commits to bytes, with domain tags so a hash made for one purpose never passes
for another."""

from __future__ import annotations

import hashlib

HASH_SIZE = 32


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def tagged_hash(tag: str, *parts: bytes) -> bytes:
    """SHA-256 over a domain tag and length-prefixed parts (unambiguous concatenation)."""
    h = hashlib.sha256()
    tag_bytes = tag.encode("ascii")
    h.update(len(tag_bytes).to_bytes(1, "big") + tag_bytes)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()
