"""The state tree's upper tier as the store keeps it: one row per node that is not the
empty subtree's hash (level 0: bucket roots, `STATE_BUCKET_BITS`: the root).

Computed from the buckets' entries when a schema-1 store is migrated or a store is
built in bulk (`upper_tier` is the app's: one definition of the tree's hashing); a
running node's `State` keeps it up to date block by block.
"""

from __future__ import annotations

from collections.abc import Iterable

from medchain.app import STATE_BUCKET_BITS, STATE_EMPTY_SUBTREES, TreeNode, state_entry_leaf
from medchain.app import state_upper_tier as upper_tier
from medchain.crypto import merkle_root_of_hashes

__all__ = ["bucket_roots", "tree_root", "upper_tier"]


def tree_root(nodes: Iterable[TreeNode]) -> bytes:
    """The root these nodes hold (the empty tree's when none is stored)."""
    for level, index, hash_ in nodes:
        if (level, index) == (STATE_BUCKET_BITS, 0):
            return hash_
    return STATE_EMPTY_SUBTREES[STATE_BUCKET_BITS]


def bucket_roots(rows: Iterable[tuple[int, bytes, bytes]]) -> dict[int, bytes]:
    """The root of every non-empty bucket, from (bucket, key, value) rows in (bucket,
    key) order: the state table's own order, so a full read of it needs no sort."""
    roots: dict[int, bytes] = {}
    current: int | None = None
    leaves: list[bytes] = []
    for bucket, key, value in rows:
        if bucket != current:
            if current is not None:
                roots[current] = merkle_root_of_hashes(leaves)
            current, leaves = bucket, []
        leaves.append(state_entry_leaf(key, value))
    if current is not None:
        roots[current] = merkle_root_of_hashes(leaves)
    return roots
