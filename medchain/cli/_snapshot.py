"""`medchain snapshot list|create`: the state snapshots a node keeps for joining nodes."""

from __future__ import annotations

from rich.table import Table

from medchain.cli._common import console, reports_errors
from medchain.cli._node import HomeOption
from medchain.node import STORE_FILE, SnapshotFiles, create_snapshot
from medchain.store import ChainStore
from medchain.types import MedchainError

_SHOWN_HEX = 16


@reports_errors
def snapshot_create(home: HomeOption) -> None:
    """Make a snapshot of the state at the stored tip, with the node stopped or running."""
    store_path = home / STORE_FILE
    if not store_path.is_file():
        raise MedchainError(
            f"{home} holds no chain store ({STORE_FILE}); pass a node's home with --home"
        )
    with ChainStore(store_path) as store, store.state_view() as view:
        manifest = create_snapshot(view, home)
    console.print(
        f"snapshot at height {manifest.height}: {manifest.entries} entries in "
        f"{len(manifest.chunks)} chunks, in {SnapshotFiles(home).path(manifest.height)}"
    )


@reports_errors
def snapshot_list(home: HomeOption) -> None:
    """The snapshots this node holds, oldest first."""
    files = SnapshotFiles(home)
    heights = files.heights()
    if not heights:
        console.print(f"no snapshots in {files.root}; make one with `medchain snapshot create`")
        return
    console.print(_table(files, heights))


def _table(files: SnapshotFiles, heights: list[int]) -> Table:
    table = Table(title=f"snapshots in {files.root}")
    table.add_column("height", justify="right")
    table.add_column("block hash", no_wrap=True)
    table.add_column("state root", no_wrap=True)
    for name in ("entries", "chunks", "bytes"):
        table.add_column(name, justify="right")
    for height in heights:
        manifest = files.manifest(height)
        size = len(files.manifest_bytes(height)) + sum(c.size for c in manifest.chunks)
        table.add_row(
            str(height),
            _short(manifest.block_hash),
            _short(manifest.state_root),
            f"{manifest.entries:,}",
            str(len(manifest.chunks)),
            f"{size:,}",
        )
    return table


def _short(hash_: bytes) -> str:
    """Enough of a hash to tell snapshots apart and to compare with a block's."""
    return hash_.hex()[:_SHOWN_HEX] + "…"
