"""Embedded storage of a node: blocks, transaction receipts and state in one SQLite file."""

from medchain.store._chain_store import MAX_HEIGHT, SCHEMA_VERSION, ChainStore
from medchain.store._disk import disk_full, free_bytes, is_disk_full, raise_if_disk_full
from medchain.store._errors import DiskFull, NotFound, StoreError
from medchain.store._maintenance import Maintained, StoreFiles, StoreMaintainer, store_files

__all__ = [
    "MAX_HEIGHT",
    "SCHEMA_VERSION",
    "ChainStore",
    "DiskFull",
    "Maintained",
    "NotFound",
    "StoreError",
    "StoreFiles",
    "StoreMaintainer",
    "disk_full",
    "free_bytes",
    "is_disk_full",
    "raise_if_disk_full",
    "store_files",
]
