"""The state tree's nodes as the store keeps them: one row per node that is not the
empty subtree's hash (level 0: cell roots; 4: bucket roots; `STATE_ROOT_LEVEL`: the
root; levels 1 to 3 are rehashed from a bucket's cell roots, never stored).

Computed from the cells' entries when a store is built in bulk (`tree_nodes_of` is
the app's: one definition of the tree's hashing); a running node's `State` keeps them
up to date block by block.
"""

from __future__ import annotations

from collections.abc import Iterable

from medchain.app import STATE_EMPTY_SUBTREES, STATE_ROOT_LEVEL, TreeNode, state_entry_leaf
from medchain.app import state_tree_nodes_of as tree_nodes_of
from medchain.crypto import merkle_root_of_hashes

__all__ = ["cell_roots", "tree_nodes_of", "tree_root"]


def tree_root(nodes: Iterable[TreeNode]) -> bytes:
    """The root these nodes hold (the empty tree's when none is stored)."""
    for level, index, hash_ in nodes:
        if (level, index) == (STATE_ROOT_LEVEL, 0):
            return hash_
    return STATE_EMPTY_SUBTREES[STATE_ROOT_LEVEL]


def cell_roots(rows: Iterable[tuple[int, bytes, bytes]]) -> dict[int, bytes]:
    """The root of every non-empty cell, from (cell, key, value) rows in (cell, key)
    order: the state table's own order, so a full read of it needs no sort."""
    roots: dict[int, bytes] = {}
    current: int | None = None
    leaves: list[bytes] = []
    for cell, key, value in rows:
        if cell != current:
            if current is not None:
                roots[current] = merkle_root_of_hashes(leaves)
            current, leaves = cell, []
        leaves.append(state_entry_leaf(key, value))
    if current is not None:
        roots[current] = merkle_root_of_hashes(leaves)
    return roots
