"""Embedded storage of a node: blocks, transaction receipts and state (with its tree's
stored nodes) in one SQLite file."""

from medchain.store._chain_store import (
    DEFAULT_STATE_CACHE_BYTES,
    MAX_HEIGHT,
    SCHEMA_VERSION,
    ChainStore,
)
from medchain.store._disk import disk_full, free_bytes, is_disk_full, raise_if_disk_full
from medchain.store._errors import DiskFull, NotFound, StoreError
from medchain.store._maintenance import Maintained, StoreFiles, StoreMaintainer, store_files
from medchain.store._state_cache import StateCache
from medchain.store._state_view import StateView
from medchain.store._stored_state import StoredState
from medchain.store._tree_nodes import cell_roots, tree_nodes_of, tree_root

__all__ = [
    "DEFAULT_STATE_CACHE_BYTES",
    "MAX_HEIGHT",
    "SCHEMA_VERSION",
    "ChainStore",
    "DiskFull",
    "Maintained",
    "NotFound",
    "StateCache",
    "StateView",
    "StoreError",
    "StoreFiles",
    "StoreMaintainer",
    "StoredState",
    "cell_roots",
    "disk_full",
    "free_bytes",
    "is_disk_full",
    "raise_if_disk_full",
    "store_files",
    "tree_nodes_of",
    "tree_root",
]
