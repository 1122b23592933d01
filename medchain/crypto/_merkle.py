"""Merkle trees as in RFC 6962 (Certificate Transparency), over SHA-256.

Leaves and inner nodes are hashed with different one-byte prefixes (0x00, 0x01), so
an inner node can never pass for a leaf (second-preimage attacks). A tree of n > 1
leaves splits at the largest power of two below n; an odd node is carried up
unchanged instead of being paired with a copy of itself, so no two leaf lists give
the same root (unlike Bitcoin's tree, CVE-2012-2459). The empty tree's root is
SHA-256(b"").

The tree is built bottom-up, level by level: pairing neighbours and carrying the odd
last node up gives exactly the RFC's recursive split, at one hash per node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"
_HASH_SIZE = 32


@dataclass(frozen=True)
class MerkleProof:
    """Proof that the leaf at `index` is in a tree of `tree_size` leaves.

    `path` holds the sibling hashes from the leaf up to the root (RFC 6962 audit path).
    """

    index: int
    tree_size: int
    path: tuple[bytes, ...]


def _leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(_LEAF_PREFIX + leaf).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _next_level(level: list[bytes]) -> list[bytes]:
    sha = hashlib.sha256
    paired = [
        sha(_NODE_PREFIX + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)
    ]
    if len(level) % 2:
        paired.append(level[-1])
    return paired


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """The RFC 6962 Merkle tree hash (MTH) of `leaves`, in order."""
    sha = hashlib.sha256
    return merkle_root_of_hashes([sha(_LEAF_PREFIX + leaf).digest() for leaf in leaves])


@lru_cache(maxsize=16)
def cached_merkle_root(leaves: tuple[bytes, ...]) -> bytes:
    """`merkle_root` of `leaves`, remembered for the last few lists. A block's
    transaction ids are rooted by the candidate that ordered them, by each validator
    checking that ordering's signature, by the header built from it and by every check
    of that header: about 2.5 ms each time for 2,000 ids. The whole tuple is the key,
    so a hit is exactly the root `merkle_root` gives."""
    return merkle_root(leaves)


def leaf_hash(leaf: bytes) -> bytes:
    """RFC 6962's hash of one leaf (for callers that keep leaf hashes between roots)."""
    return _leaf_hash(leaf)


def merkle_root_of_hashes(leaf_hashes: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of leaves given by their `leaf_hash`es, in order."""
    if not leaf_hashes:
        return hashlib.sha256(b"").digest()
    level = list(leaf_hashes)
    while len(level) > 1:
        level = _next_level(level)
    return level[0]


def inclusion_proof(leaves: Sequence[bytes], index: int) -> MerkleProof:
    """The audit path of `leaves[index]`; raises IndexError for an index outside the tree."""
    size = len(leaves)
    if not 0 <= index < size:
        raise IndexError(f"leaf index {index} is outside a tree of {size} leaves")
    level = [_leaf_hash(leaf) for leaf in leaves]
    path: list[bytes] = []
    position = index
    while len(level) > 1:
        sibling = position ^ 1
        if sibling < len(level):
            path.append(level[sibling])
        # else: the odd last node is carried up and contributes no path element
        level = _next_level(level)
        position //= 2
    return MerkleProof(index=index, tree_size=size, path=tuple(path))


def inclusion_proofs(leaves: Sequence[bytes]) -> list[MerkleProof]:
    """The audit path of every leaf, from one pass over the tree: proving each leaf
    with `inclusion_proof` would rebuild the tree per leaf (quadratic in the size)."""
    size = len(leaves)
    levels = [[_leaf_hash(leaf) for leaf in leaves]]
    while len(levels[-1]) > 1:
        levels.append(_next_level(levels[-1]))
    proofs = []
    for index in range(size):
        path: list[bytes] = []
        position = index
        for level in levels[:-1]:
            sibling = position ^ 1
            if sibling < len(level):
                path.append(level[sibling])
            position //= 2
        proofs.append(MerkleProof(index=index, tree_size=size, path=tuple(path)))
    return proofs


def verify_inclusion(root: bytes, leaf: bytes, proof: MerkleProof) -> bool:
    """True iff `proof` shows `leaf` at `proof.index` in the tree with `root`.

    Follows RFC 9162 section 2.1.3.2; returns False (never raises) for any malformed
    input, so it is safe on proofs received from the network.
    """
    try:
        index, size, path = proof.index, proof.tree_size, proof.path
        if (
            not isinstance(root, bytes)
            or not isinstance(leaf, bytes)
            or type(index) is not int
            or type(size) is not int
            or not isinstance(path, tuple)
            or not 0 <= index < size
        ):
            return False
        node = _leaf_hash(leaf)
        position, last = index, size - 1
        for sibling in path:
            if not isinstance(sibling, bytes) or len(sibling) != _HASH_SIZE or last == 0:
                return False
            if position % 2 == 1 or position == last:
                node = _node_hash(sibling, node)
                if position % 2 == 0:
                    # A carried-up right-edge node: climb until it becomes a right child.
                    while position % 2 == 0 and position != 0:
                        position >>= 1
                        last >>= 1
            else:
                node = _node_hash(node, sibling)
            position >>= 1
            last >>= 1
        return last == 0 and node == root
    except Exception:  # garbage of any shape is simply "not proven"
        return False
