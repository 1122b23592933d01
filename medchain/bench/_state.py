"""State root cost per block as the state grows: the two-tier tree (`app/_state_tree`)
against one RFC 6962 tree over every entry, the definition it replaced. A benchmark,
not a test."""

from __future__ import annotations

import hashlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

from medchain.app import State, state_entry_leaf
from medchain.crypto import merkle_root_of_hashes


@dataclass(frozen=True)
class StateRootTiming:
    entries: int
    changes: int
    """Entries each block writes (new keys, as the vitals index adds)."""
    blocks: int
    build_s: float
    """The first root over the whole state (a node opening its store)."""
    block_ms_p50: float
    """A block's roots with the two-tier tree: the proposer's root of the open block,
    then the root once it is committed."""
    block_ms_max: float
    single_tree_ms: float
    """One root over every entry in key order, leaf hashes already known: what the same
    block cost before, twice (proposer's root and committed root)."""


def bench_entry(n: int) -> tuple[bytes, bytes]:
    """Entry `n` of a benchmark state: spread keys, 32-byte values."""
    digest = hashlib.sha256(n.to_bytes(8, "big")).digest()
    return b"bench/" + digest[:20], digest  # spread keys, 32-byte values


def run_state_bench(
    sizes: tuple[int, ...] = (10_000, 100_000, 1_000_000),
    changes: int = 400,
    blocks: int = 5,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[StateRootTiming]:
    timings = []
    for size in sizes:
        entries = dict(bench_entry(n) for n in range(size))
        began = time.perf_counter()
        state = State(entries)
        state.root()
        build_s = time.perf_counter() - began
        block_ms = []
        next_entry = size
        for block in range(blocks):
            state.begin_block()
            for _ in range(changes):
                state.set(*bench_entry(next_entry))
                next_entry += 1
            began = time.perf_counter()
            pending = state.pending_root()
            state.end_block()
            assert state.root() == pending
            block_ms.append((time.perf_counter() - began) * 1000)
            if progress is not None:
                progress(f"{size:,} entries", block + 1, blocks)
        committed = state.committed()
        leaves = [state_entry_leaf(k, v) for k, v in committed.items()]
        began = time.perf_counter()
        merkle_root_of_hashes(leaves)
        single_ms = (time.perf_counter() - began) * 1000
        timings.append(
            StateRootTiming(
                size,
                changes,
                blocks,
                build_s,
                statistics.median(block_ms),
                max(block_ms),
                single_ms,
            )
        )
    return timings
