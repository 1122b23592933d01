"""Embedded storage of a node: blocks, transaction receipts and state in one SQLite file."""

from medchain.store._chain_store import MAX_HEIGHT, SCHEMA_VERSION, ChainStore
from medchain.store._errors import NotFound, StoreError
from medchain.store._state_view import StateView

__all__ = [
    "MAX_HEIGHT",
    "SCHEMA_VERSION",
    "ChainStore",
    "NotFound",
    "StateView",
    "StoreError",
]
