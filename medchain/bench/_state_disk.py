"""The state on disk at scale: a chain store of N entries built in bulk, then opened by
a fresh process as a node opens its store (the stored tree read and checked, nothing
loaded) to commit blocks of new entries. A benchmark, not a test.

Reports, per size and with the default state cache: the measuring process's peak
resident memory, the time from opening the store to its first commit, and a block's
cost, whole and split: the proposer's pending root (reading the cells the block
changes, the cell roots beside them, and rehashing), then the commit (end of block,
root, and the store's write of entries and tree nodes with the block, fsync).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from medchain.bench._fresh_process import peak_rss_kib, run_in_fresh_process
from medchain.bench._state import bench_entry
from medchain.node import commit_to_store, genesis_block, genesis_hash, ledger_from_store
from medchain.store import ChainStore, tree_root
from medchain.types import ZERO_HASH, Block, Certificate, Genesis, Header, block_hash

if TYPE_CHECKING:
    from multiprocessing.queues import Queue

    Results = Queue[tuple[float, list[tuple[float, float]], int]]
    """(seconds to the first commit, each later block's (root ms, commit ms), peak
    resident KiB)."""

BENCH_GENESIS = Genesis("bench-state", 1_700_000_000_000)
"""The chain of every benchmark store: no validators, so blocks need no signatures."""
_STORE_FILE = "chain.sqlite"


@dataclass(frozen=True)
class DiskStateTiming:
    entries: int
    changes: int
    """New entries each block writes."""
    blocks: int
    build_s: float | None
    """Building the store in bulk; None when an earlier run's store was reused."""
    open_to_first_commit_s: float
    """Opening the store, the ledger over it, and the first block committed."""
    block_ms_p50: float
    block_ms_max: float
    root_ms_p50: float
    """The pending root alone: what the state's commitment costs the block."""
    commit_ms_p50: float
    """The rest: the store's write of the block, its entries and tree nodes."""
    peak_rss_mb: float
    """The measuring process's peak resident memory (it only opens and commits)."""


def run_state_disk_bench(
    directory: Path,
    sizes: tuple[int, ...] = (100_000, 10_000_000),
    changes: int = 400,
    blocks: int = 5,
    progress: Callable[[str, int, int], None] | None = None,
) -> list[DiskStateTiming]:
    """One store per size under `directory` (kept: a later run reuses it)."""
    timings = []
    for size in sizes:
        path, build_s = build_state_store(directory, size, progress)
        timings.append(_measure_in_fresh_process(path, size, changes, blocks, build_s))
    return timings


def build_state_store(
    directory: Path, size: int, progress: Callable[[str, int, int], None] | None = None
) -> tuple[Path, float | None]:
    """The store of `size` bench entries under `directory` (one per size, shared by the
    benchmarks that use one) and the seconds its build took; None if it was there."""
    path = directory / f"state-{size}" / _STORE_FILE
    return path, _build(path, size, progress)


def _build(path: Path, size: int, progress: Callable[[str, int, int], None] | None) -> float | None:
    began = time.perf_counter()
    with ChainStore(path, chain_id=BENCH_GENESIS.chain_id) as store:
        if store.is_initialised:
            return None
        stage = f"building {size:,} entries"
        nodes = store.bulk_load_state(
            (bench_entry(n) for n in range(size)),
            progress=None if progress is None else lambda done: progress(stage, done, size),
        )
        block = genesis_block(BENCH_GENESIS, tree_root(nodes))
        store.initialise(BENCH_GENESIS.chain_id, genesis_hash(BENCH_GENESIS), block, {}, nodes)
    return time.perf_counter() - began


def _measure_in_fresh_process(
    path: Path, size: int, changes: int, blocks: int, build_s: float | None
) -> DiskStateTiming:
    """In a new interpreter, so its peak memory is a node's, not the build's."""
    first_commit_s, split_ms, peak_kib = run_in_fresh_process(_measure, path, changes, blocks)
    block_ms = [root + commit for root, commit in split_ms]
    return DiskStateTiming(
        size,
        changes,
        blocks,
        build_s,
        first_commit_s,
        statistics.median(block_ms),
        max(block_ms),
        statistics.median(root for root, _ in split_ms),
        statistics.median(commit for _, commit in split_ms),
        peak_kib / 1024,
    )


def _measure(path: Path, changes: int, blocks: int, results: Results) -> None:
    began = time.perf_counter()
    store = open_bench_store(path)
    ledger = ledger_from_store(BENCH_GENESIS, store)
    split_ms = []
    first_commit_s = 0.0
    for number in range(blocks + 1):
        tip = store.latest_block()
        next_entry = 2**40 + tip.header.height * changes  # never a bulk entry's number
        state = ledger.state
        state.begin_block()
        for n in range(next_entry, next_entry + changes):
            state.set(*bench_entry(n))
        timed = time.perf_counter()
        pending = state.pending_root()
        rooted = time.perf_counter()
        state.end_block()
        block = bench_block(tip, pending)
        commit_to_store(ledger, store, block, [])
        assert state.root() == pending
        if number == 0:
            first_commit_s = time.perf_counter() - began  # untimed below: includes the open
        else:
            done = time.perf_counter()
            split_ms.append(((rooted - timed) * 1000, (done - rooted) * 1000))
    store.close()
    results.put((first_commit_s, split_ms, peak_rss_kib()))


def open_bench_store(path: Path) -> ChainStore:
    """A store `build_state_store` made, opened as its node would open it."""
    genesis = genesis_hash(BENCH_GENESIS)
    return ChainStore(path, chain_id=BENCH_GENESIS.chain_id, genesis_hash=genesis)


def bench_block(parent: Block, state_root: bytes) -> Block:
    header = Header(
        chain_id=parent.header.chain_id,
        height=parent.header.height + 1,
        prev_hash=block_hash(parent.header),
        time_ms=parent.header.time_ms + 1,
        proposer=ZERO_HASH[:20],
        tx_root=parent.header.tx_root,
        receipt_root=parent.header.receipt_root,
        state_root=state_root,
    )
    return Block(header, (), Certificate(header.height, 0, block_hash(header), ()))
