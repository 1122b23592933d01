"""The state tree's upper tier as the store keeps it: one row per node that is not the
empty subtree's hash (level 0: bucket roots, `STATE_BUCKET_BITS`: the root).

Computed here from the buckets' entries when a schema-1 store is migrated or a store
is built in bulk; a running node's `State` keeps it up to date block by block.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from medchain.app import STATE_BUCKET_BITS, STATE_EMPTY_SUBTREES, TreeNode, state_entry_leaf
from medchain.crypto import merkle_root_of_hashes

_NODE_PREFIX = b"\x01"


def upper_tier(bucket_roots: Mapping[int, bytes]) -> list[TreeNode]:
    """Every node of the tree over `bucket_roots` (absent buckets are empty) that is not
    the empty subtree's hash, in (level, index) order."""
    nodes: list[TreeNode] = []
    level_nodes = {b: r for b, r in bucket_roots.items() if r != STATE_EMPTY_SUBTREES[0]}
    for level in range(STATE_BUCKET_BITS + 1):
        nodes.extend((level, index, level_nodes[index]) for index in sorted(level_nodes))
        empty = STATE_EMPTY_SUBTREES[level]
        level_nodes = {
            parent: hashlib.sha256(
                _NODE_PREFIX
                + level_nodes.get(2 * parent, empty)
                + level_nodes.get(2 * parent + 1, empty)
            ).digest()
            for parent in {index >> 1 for index in level_nodes}
        }
    return nodes


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
