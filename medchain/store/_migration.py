"""Schema 1 to schema 2: the state keyed by (bucket, key), and the state tree's upper
tier stored beside it.

Runs inside the store's opening transaction, so a store is migrated entirely or not
at all: the old table is renamed, its entries are re-inserted with their bucket, the
upper tier is computed from the buckets' entries, then the old table is dropped.
"""

from __future__ import annotations

import sqlite3

from medchain.app import state_bucket_of
from medchain.store._stored_state import STATE_TABLES, write_tree
from medchain.store._tree_nodes import bucket_roots, upper_tier

_BUCKET_FUNCTION = "medchain_state_bucket"


def migrate_from_v1(db: sqlite3.Connection) -> None:
    """Rewrite a schema-1 store's state as schema 2, in the caller's transaction."""
    db.create_function(_BUCKET_FUNCTION, 1, state_bucket_of, deterministic=True)
    try:
        db.execute("ALTER TABLE state RENAME TO state_v1")
        for statement in STATE_TABLES:
            db.execute(statement)
        db.execute(
            f"INSERT INTO state(bucket, key, value) "
            f"SELECT {_BUCKET_FUNCTION}(key), key, value FROM state_v1"
        )
        db.execute("DROP TABLE state_v1")
    finally:
        db.create_function(_BUCKET_FUNCTION, 1, None)
    rows = db.execute("SELECT bucket, key, value FROM state ORDER BY bucket, key")
    roots = bucket_roots((int(b), bytes(k), bytes(v)) for b, k, v in rows)
    write_tree(db, upper_tier(roots), [])
    db.execute("UPDATE meta SET value = 2 WHERE key = 'schema_version'")
