"""State snapshots: made by every node at a fixed interval, served to peers, checked
and imported by a node that joins.

Interface (public names in `medchain.node`; wire types in `medchain.types`):

Wire types (`medchain.types`, canonical RLP like every other type):
  `SnapshotManifest(chain_id, height, block_hash, state_root, entries, bucket_roots,
  chunks)`: `bucket_roots` the non-empty buckets as `BucketRoot(bucket, root)` in
  bucket order; `chunks` as `ChunkInfo(first_bucket, last_bucket, size, sha256)`,
  covering buckets 0..65,535 in order without gaps. `SnapshotChunk(first_bucket,
  last_bucket, entries)`: `entries` are `StateEntry(key, value)` cell by cell (a
  bucket is 16 cells of the state tree), each cell in key order. Chunks hold whole buckets, about
  `SNAPSHOT_CHUNK_BYTES` (4 MiB) each. Snapshots are deterministic: every node
  holding the same state at the same height makes byte-identical manifests and
  chunks, so chunks of one snapshot can be fetched from different peers.
  `SnapshotInvalid` (a `MedchainError`) is raised by every check below with a
  one-line reason.

Checks (pure functions; the caller checks the header's certificate):
  `verify_manifest(manifest, header) -> None`: chain id, height, block hash and state
  root match `header`; bucket roots are in order, in range, non-empty, and hash up to
  `header.state_root`; the chunks cover every bucket once, in order.
  `verify_chunk(manifest, index, data: bytes) -> CheckedChunk`: `data` has the size
  and SHA-256 the manifest gives for chunk `index`, decodes, covers exactly that
  chunk's buckets, its entries are in its buckets, in order, without duplicates, and
  each bucket's entries hash to the manifest's root for it (a listed bucket is never
  missing); it returns the chunk and its cells' roots. Call `verify_manifest` first.

Files (`home/snapshots/<height>/manifest` and `chunk-<n>`, each the canonical bytes):
  `SnapshotFiles(home)`: `heights() -> list[int]` (ascending, complete snapshots
  only), `manifest(height) -> SnapshotManifest`, `manifest_bytes(height) -> bytes`,
  `chunk_bytes(height, index) -> bytes` (raise `SnapshotMissing`, a `MedchainError`,
  for what is not held: serve these bytes as they are), `prune(keep)`.
  A snapshot is written into a temporary directory and renamed into place when
  complete, so a crash never leaves a half snapshot that looks whole.
  `SnapshotWriter(home, manifest, header)` for a snapshot fetched from peers: checks
  the manifest against the certified header; `add_chunk(index, data)` checks the
  chunk (`verify_chunk`; raises `SnapshotInvalid`: fetch it from another peer) and
  keeps it; `missing() -> list[int]`; `finish() -> Path` once nothing is missing
  (the directory to import); `abandon()` drops what was fetched.

Making one:
  `ChainStore.state_view() -> StateView` (a read transaction on a second
  connection: a fixed view of the tip while the node keeps committing; usable from
  one other thread). `create_snapshot(view, home, *, chunk_bytes=...) ->
  SnapshotManifest` writes the view's state at `view.height`. `Snapshotter(store,
  home, interval, keep)`: `after_commit(height)` opens the view on the caller's
  thread when `height % interval == 0` and makes the snapshot in a worker thread,
  then prunes to the last `keep`; the node runtime calls it after each commit.

Importing one (the node that joins):
  `import_snapshot(store, snapshot_dir, base_block, genesis_hash) -> SnapshotManifest`: checks
  the manifest against `base_block.header` and every chunk as it streams them into
  an empty store, with the state tree's cell roots found checking the chunks and
  its tier computed from the manifest's bucket roots (`state_tree_nodes`). It
  calls the store method the `join` side provides (base-height support;
  `SnapshotTarget` is its protocol), proposed as:

      ChainStore.initialise_from_snapshot(
          chain_id: str, genesis_hash: bytes, base_block: Block, *,
          state: Iterable[tuple[bytes, bytes]],   # cell by cell, key order
          tree_nodes: Iterable[TreeNode],          # (level, index, hash), non-empty
      ) -> None

  one transaction: refuses an initialised store; stores `base_block` as the first
  block (the base height), the entries and tree nodes, the tip at the base height
  and its state root; if `state` raises (a chunk refused), nothing is written.
"""

from __future__ import annotations

import array
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Protocol

from medchain.app import STATE_BUCKET_LEVEL, TreeNode, state_bucket_root, state_cell_roots_of
from medchain.node._snapshot_checks import (
    BUCKETS,
    state_tree_nodes,
    verify_chunk,
    verify_manifest,
)
from medchain.node._snapshot_files import (
    MANIFEST_FILE,
    SnapshotBuild,
    SnapshotFiles,
    chunk_file,
)
from medchain.store import ChainStore, StateView, StoreError, tree_root
from medchain.types import (
    HASH_SIZE,
    Block,
    BucketRoot,
    ChunkInfo,
    DecodeError,
    MedchainError,
    SnapshotChunk,
    SnapshotInvalid,
    SnapshotManifest,
    StateEntry,
    decode,
    encode,
    sha256,
)

SNAPSHOT_CHUNK_BYTES = 4 * 1024 * 1024
"""About how large a chunk is: whole buckets are added until it reaches this size."""

log = logging.getLogger(__name__)

_ENTRY_OVERHEAD = 8
"""Bytes an entry's encoding adds to its key and value (list and length headers), at
most, in the running size that decides where a chunk ends."""


class _Chunker:
    """Cuts the state, bucket by bucket, into chunks of whole buckets about
    `chunk_bytes` each, writing each chunk as soon as it is complete."""

    def __init__(self, build: SnapshotBuild, chunk_bytes: int) -> None:
        self._build = build
        self._chunk_bytes = chunk_bytes
        self._entries: list[StateEntry] = []
        self._size = 0
        self._first = 0
        self.chunks: list[ChunkInfo] = []
        self.bucket_roots: list[BucketRoot] = []
        self.count = 0

    def add_bucket(self, bucket: int, entries: list[StateEntry]) -> None:
        if self._size >= self._chunk_bytes:
            self.cut(bucket - 1)  # the chunk also takes the empty buckets up to this one
        cells = state_cell_roots_of((e.key, e.value) for e in entries)
        self.bucket_roots.append(BucketRoot(bucket, state_bucket_root(cells, bucket)))
        self._entries.extend(entries)
        self._size += sum(len(e.key) + len(e.value) + _ENTRY_OVERHEAD for e in entries)
        self.count += len(entries)

    def cut(self, last_bucket: int) -> None:
        data = encode(SnapshotChunk(self._first, last_bucket, tuple(self._entries)))
        self._build.write(chunk_file(len(self.chunks)), data)
        self.chunks.append(ChunkInfo(self._first, last_bucket, len(data), sha256(data)))
        self._entries, self._size, self._first = [], 0, last_bucket + 1


def create_snapshot(
    view: StateView,
    home: Path,
    *,
    chunk_bytes: int = SNAPSHOT_CHUNK_BYTES,
    stop: threading.Event | None = None,
) -> SnapshotManifest:
    """Write the state `view` reads (the tip when it was opened) as the snapshot of
    `view.height` under `home`, and return its manifest. If `stop` is set meanwhile (the
    node is shutting down), raise InterruptedError, having written nothing."""
    with SnapshotBuild(home, view.height) as build:
        chunker = _Chunker(build, chunk_bytes)
        for bucket, entries in _buckets(view.cell_entries()):
            if stop is not None and stop.is_set():
                raise InterruptedError(f"the snapshot at height {view.height} was stopped")
            chunker.add_bucket(bucket, entries)
        chunker.cut(BUCKETS - 1)
        roots = tuple(chunker.bucket_roots)
        if tree_root(state_tree_nodes(roots)) != view.state_root:
            raise StoreError(
                f"the stored state at height {view.height} does not hash to its state root; "
                "the store is damaged: restore it from a backup or sync the node again"
            )
        manifest = SnapshotManifest(
            view.chain_id,
            view.height,
            view.block_hash,
            view.state_root,
            chunker.count,
            roots,
            tuple(chunker.chunks),
        )
        build.write(MANIFEST_FILE, encode(manifest))
        build.finish()
    return manifest


def _buckets(
    rows: Iterator[tuple[int, bytes, bytes]],
) -> Iterator[tuple[int, list[StateEntry]]]:
    """Group (cell, key, value) rows in cell order into (bucket, its entries)."""
    bucket, entries = -1, list[StateEntry]()
    for cell, key, value in rows:
        row_bucket = cell >> STATE_BUCKET_LEVEL
        if row_bucket != bucket and entries:
            yield bucket, entries
            entries = []
        bucket = row_bucket
        entries.append(StateEntry(key, value))
    if entries:
        yield bucket, entries


class SnapshotTarget(Protocol):
    """An empty store that takes a chain from a snapshot (`ChainStore`)."""

    def initialise_from_snapshot(
        self,
        chain_id: str,
        genesis_hash: bytes,
        base_block: Block,
        *,
        state: Iterable[tuple[bytes, bytes]],
        tree_nodes: Iterable[TreeNode],
    ) -> None: ...


def import_snapshot(
    store: SnapshotTarget, snapshot: Path, base_block: Block, genesis_hash: bytes
) -> SnapshotManifest:
    """Write the snapshot in directory `snapshot` into the empty `store` as the state
    at `base_block`'s height (the caller checked its header's certificate). Every chunk
    is checked as it streams in; if one is refused, nothing is written."""
    manifest = read_manifest_file(snapshot)
    verify_manifest(manifest, base_block.header)
    cells = _FoundCells()
    store.initialise_from_snapshot(
        manifest.chain_id,
        genesis_hash,
        base_block,
        state=_checked_entries(manifest, snapshot, cells),
        tree_nodes=_tree_nodes(manifest, cells),
    )
    return manifest


class _FoundCells:
    """The cell roots the chunks' checks found, in cell order (the chunks' own), packed:
    there are a million of them at ten million entries."""

    def __init__(self) -> None:
        self._cells = array.array("L")
        self._roots = bytearray()

    def add(self, roots: Mapping[int, bytes]) -> None:
        for cell in sorted(roots):
            self._cells.append(cell)
            self._roots += roots[cell]

    def nodes(self) -> Iterator[TreeNode]:
        view = memoryview(self._roots)
        for at, cell in enumerate(self._cells):
            yield 0, cell, bytes(view[at * HASH_SIZE : (at + 1) * HASH_SIZE])


def _tree_nodes(manifest: SnapshotManifest, cells: _FoundCells) -> Iterator[TreeNode]:
    """The cell roots the chunks' checks found, then the tier over the manifest's bucket
    roots: read by the store once every chunk has streamed in."""
    yield from cells.nodes()
    yield from state_tree_nodes(manifest.bucket_roots)


def read_manifest_file(snapshot: Path) -> SnapshotManifest:
    try:
        return decode(SnapshotManifest, (snapshot / MANIFEST_FILE).read_bytes())
    except (OSError, DecodeError) as exc:
        raise SnapshotInvalid(
            f"cannot read the manifest of the snapshot in {snapshot} ({exc}); "
            "fetch the snapshot again"
        ) from exc


def _checked_entries(
    manifest: SnapshotManifest, snapshot: Path, cells: _FoundCells
) -> Iterator[tuple[bytes, bytes]]:
    """Every chunk's entries as it is checked; its cells' roots go into `cells`."""
    count = 0
    for index in range(len(manifest.chunks)):
        try:
            data = (snapshot / chunk_file(index)).read_bytes()
        except OSError as exc:
            raise SnapshotInvalid(f"chunk {index} of {snapshot} is unreadable ({exc})") from exc
        checked = verify_chunk(manifest, index, data)
        cells.add(checked.cell_roots)
        for entry in checked.chunk.entries:
            count += 1
            yield entry.key, entry.value
    if count != manifest.entries:
        raise SnapshotInvalid(
            f"the snapshot holds {count} entries, its manifest says {manifest.entries}; "
            "fetch it from another peer"
        )


class Snapshotter:
    """Makes a snapshot every `interval` blocks without blocking the caller, keeping the
    last `keep`. The view is opened on the committing thread right after the block, so
    every node snapshots exactly the same heights; the chunks are written in a worker
    thread. A snapshot still being written when the next is due makes that one skip."""

    def __init__(
        self,
        store: ChainStore,
        home: Path,
        interval: int,
        keep: int,
        *,
        chunk_bytes: int = SNAPSHOT_CHUNK_BYTES,
    ) -> None:
        self._store = store
        self._home = Path(home)
        self._interval = interval
        self._keep = keep
        self._chunk_bytes = chunk_bytes
        self._worker: threading.Thread | None = None
        self._stop = threading.Event()
        SnapshotFiles(self._home).remove_unfinished()

    def after_commit(self, height: int) -> bool:
        """Start the snapshot of `height` if one is due; True if so. Call it right after
        committing `height`, from the committing thread: the snapshot holds the tip."""
        due = self._interval > 0 and height > 0 and height % self._interval == 0
        if not due or self.busy or self._stop.is_set():
            return False
        try:
            view = self._store.state_view()
        except StoreError as exc:
            log.error("no snapshot at height %d: %s", height, exc)
            return False
        if view.height != height:
            view.close()
            log.info("no snapshot at height %d: the store's tip is %d", height, view.height)
            return False
        self._worker = threading.Thread(
            target=self._make, args=(view,), name=f"snapshot-{height}", daemon=True
        )
        self._worker.start()
        return True

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the snapshot being written (in a test, say)."""
        if self._worker is not None:
            self._worker.join(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Stop a snapshot being written (it leaves nothing) and make no more."""
        self._stop.set()
        self.wait(timeout)

    def _make(self, view: StateView) -> None:
        try:
            with view:
                manifest = create_snapshot(
                    view, self._home, chunk_bytes=self._chunk_bytes, stop=self._stop
                )
            pruned = SnapshotFiles(self._home).prune(self._keep)
            log.info(
                "snapshot at height %d: %d entries in %d chunks; pruned %s",
                manifest.height,
                manifest.entries,
                len(manifest.chunks),
                pruned or "none",
            )
        except InterruptedError:
            log.info("snapshot at height %d stopped: the node is shutting down", view.height)
        except (MedchainError, OSError) as exc:
            log.error("snapshot at height %d failed: %s", view.height, exc)
        except Exception:  # a snapshot that fails must not take the node down
            log.exception("snapshot at height %d failed", view.height)
