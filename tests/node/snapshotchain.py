"""A chain store whose blocks carry real state roots, for the snapshot tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from medchain.app import state_bucket_of, state_root_of
from medchain.node import SnapshotFiles, create_snapshot
from medchain.store import ChainStore, bucket_roots, upper_tier
from medchain.types import ZERO_HASH, Block, SnapshotManifest, block_hash, sha256
from tests.store.test_chain_store import make_block

CHAIN = "medchain-snap"
GENESIS_HASH = sha256(b"snapshot genesis")


def block_at(height: int, prev_hash: bytes, state: Mapping[bytes, bytes]) -> Block:
    return make_block(height, prev_hash, state_root=state_root_of(state), chain=CHAIN)


def entries(count: int, tag: bytes = b"") -> dict[bytes, bytes]:
    """`count` entries with keys and values of varying length."""
    return {b"k/%d" % n + tag: b"v" * (n % 7) + b"%d" % n + tag for n in range(count)}


def tree_of(state: Mapping[bytes, bytes]) -> dict[tuple[int, int], bytes]:
    """The state tree's upper tier over `state`, by (level, index), as the store keeps it."""
    rows = sorted((state_bucket_of(key), key, value) for key, value in state.items())
    return {(level, index): hash_ for level, index, hash_ in upper_tier(bucket_roots(rows))}


class SnapChain:
    """A store on disk and the state it holds, committed block by block."""

    def __init__(self, path: Path, genesis_state: Mapping[bytes, bytes]) -> None:
        self.store = ChainStore(path)
        self.state = dict(genesis_state)
        self.blocks = [block_at(0, ZERO_HASH, self.state)]
        nodes = [(level, index, hash_) for (level, index), hash_ in tree_of(self.state).items()]
        self.store.initialise(CHAIN, GENESIS_HASH, self.blocks[0], self.state, nodes)

    def commit(self, changes: Mapping[bytes, bytes | None]) -> Block:
        before = tree_of(self.state)
        for key, value in changes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        after = tree_of(self.state)
        tree_changes = {at: after.get(at) for at in before.keys() | after.keys()}
        block = block_at(len(self.blocks), block_hash(self.blocks[-1].header), self.state)
        self.store.commit_block(block, [], changes, tree_changes)
        self.blocks.append(block)
        return block


class Made:
    """A snapshot made from a chain: its header, manifest and chunks' bytes."""

    def __init__(self, home: Path, chain: SnapChain, chunk_bytes: int) -> None:
        with chain.store.state_view() as view:
            self.manifest = create_snapshot(view, home, chunk_bytes=chunk_bytes)
        self.header = chain.blocks[self.manifest.height].header
        self.block = chain.blocks[self.manifest.height]
        self.state = dict(chain.state)
        files = SnapshotFiles(home)
        self.path = files.path(self.manifest.height)
        self.chunks = [
            files.chunk_bytes(self.manifest.height, n) for n in range(len(self.manifest.chunks))
        ]


def relabel(manifest: SnapshotManifest, index: int, data: bytes) -> SnapshotManifest:
    """The manifest a lying peer would serve with `data` as chunk `index`: its size and
    hash name `data`, so only the chunk's contents can give the lie away."""
    chunks = list(manifest.chunks)
    chunks[index] = dataclasses.replace(chunks[index], size=len(data), sha256=sha256(data))
    return dataclasses.replace(manifest, chunks=tuple(chunks))
