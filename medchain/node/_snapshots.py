"""State snapshots: made by every node at a fixed interval, served to peers, checked
and imported by a node that joins.

Interface (public names in `medchain.node`; wire types in `medchain.types`):

Wire types (`medchain.types`, canonical RLP like every other type):
  `SnapshotManifest(chain_id, height, block_hash, state_root, entries, bucket_roots,
  chunks)`: `bucket_roots` the non-empty buckets as `BucketRoot(bucket, root)` in
  bucket order; `chunks` as `ChunkInfo(first_bucket, last_bucket, size, sha256)`,
  covering buckets 0..65,535 in order without gaps. `SnapshotChunk(first_bucket,
  last_bucket, entries)`: `entries` are `StateEntry(key, value)` bucket by bucket,
  each bucket in key order. Chunks hold whole buckets, about `CHUNK_BYTES` (4 MiB)
  each. Snapshots are deterministic: every node holding the same state at the same
  height makes byte-identical manifests and chunks, so chunks of one snapshot can be
  fetched from different peers. `SnapshotInvalid` (a `MedchainError`) is raised by
  every check below with a one-line reason.

Checks (pure functions; the caller checks the header's certificate):
  `verify_manifest(manifest, header) -> None`: chain id, height, block hash and state
  root match `header`; bucket roots are in order, in range, non-empty, and hash up to
  `header.state_root`; the chunks cover every bucket once, in order.
  `verify_chunk(manifest, index, data: bytes) -> SnapshotChunk`: `data` has the size
  and SHA-256 the manifest gives for chunk `index`, decodes, covers exactly that
  chunk's buckets, its entries are in its buckets, in order, without duplicates, and
  each bucket's entries hash to the manifest's root for it (a listed bucket is never
  missing). Call `verify_manifest` first.

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
  keeps it; `missing() -> list[int]`; `finish() -> Path` once nothing is missing.

Making one:
  `ChainStore.state_view() -> StateView` (a read transaction on a second
  connection: a fixed view of the tip while the node keeps committing; usable from
  one other thread). `create_snapshot(view, home, *, chunk_bytes=CHUNK_BYTES) ->
  SnapshotManifest` writes the view's state at `view.height`. `Snapshotter(store,
  home, interval, keep)`: `after_commit(height)` opens the view on the caller's
  thread when `height % interval == 0` and makes the snapshot in a worker thread,
  then prunes to the last `keep`; the node runtime calls it after each commit.

Importing one (the node that joins):
  `import_snapshot(store, snapshot_dir, base_block, genesis_hash) -> None`: checks
  the manifest against `base_block.header` and every chunk as it streams them into
  an empty store, with the state tree's upper tier computed from the manifest's
  bucket roots (`state_tree_nodes(bucket_roots)`). It calls the store method the
  `join` side provides (base-height support), proposed as:

      ChainStore.initialise_from_snapshot(
          chain_id: str, genesis_hash: bytes, base_block: Block,
          state: Iterable[tuple[bytes, bytes]],   # bucket by bucket, key order
          tree_nodes: Iterable[TreeNode],          # (level, index, hash), non-empty
      ) -> None

  one transaction: refuses an initialised store; stores `base_block` as the first
  block (the base height), the entries and tree nodes, the tip at the base height
  and its state root; if `state` raises (a chunk refused), nothing is written.
"""

from __future__ import annotations

CHUNK_BYTES = 4 * 1024 * 1024
"""About how large a chunk is: whole buckets are added until it reaches this size."""
