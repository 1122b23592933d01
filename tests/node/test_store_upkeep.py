"""StoreUpkeep: the chain store maintained every N blocks or when its WAL is large,
one run at a time, its sizes at /metrics, a full disk told to the node."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from medchain.node import StoreUpkeep
from medchain.store import ChainStore, DiskFull, StoreMaintainer, disk_full, store_files
from tests.store.test_chain_store import commit_next, make_tx, new_store

VALUE = b"v" * 2_000


def upkeep_of(path: Path, told: list[DiskFull], **limits: int) -> StoreUpkeep:
    settings = {"every_blocks": 10, "wal_max_bytes": 2**30} | limits
    return StoreUpkeep(path, CollectorRegistry(), on_disk_full=told.append, **settings)


async def commit_and_keep(store: ChainStore, upkeep: StoreUpkeep, blocks: int) -> None:
    for n in range(blocks):
        commit_next(store, [make_tx(store.latest_height() + 1)], {b"k%d" % n: VALUE})
        upkeep.after_commit(store.latest_height())
        await asyncio.sleep(0)  # a run starts in a worker thread, as between commits


def test_the_store_is_maintained_every_n_blocks(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    told: list[DiskFull] = []

    async def run() -> StoreUpkeep:
        with new_store(path) as store:
            upkeep = upkeep_of(path, told, every_blocks=10)
            await commit_and_keep(store, upkeep, 9)
            assert upkeep.runs == 0 and store_files(path).wal_bytes > 0
            await commit_and_keep(store, upkeep, 2)  # ten blocks after the first: one run
            await upkeep.close()
            return upkeep

    upkeep = asyncio.run(run())
    assert upkeep.runs == 1 and told == []


def test_a_large_wal_is_maintained_at_once(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"

    async def run() -> int:
        with new_store(path) as store:
            upkeep = upkeep_of(path, [], every_blocks=10**6, wal_max_bytes=65_536)
            await commit_and_keep(store, upkeep, 60)  # ~120 KB of state into the WAL
            await upkeep.close()
            return upkeep.runs

    assert asyncio.run(run()) >= 1  # never for the block count: for the WAL's size


def test_the_sizes_are_served_as_gauges(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite"
    registry = CollectorRegistry()
    with new_store(path) as store:
        commit_next(store, [make_tx(1)], {b"k": VALUE})
        upkeep = StoreUpkeep(
            path, registry, every_blocks=1, wal_max_bytes=2**30, on_disk_full=lambda _: None
        )
        files = store_files(path)
        assert registry.get_sample_value("medchain_store_file_bytes") == files.file_bytes > 0
        assert registry.get_sample_value("medchain_store_wal_bytes") == files.wal_bytes > 0
        asyncio.run(upkeep.close())


def test_a_full_disk_during_maintenance_is_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "chain.sqlite"
    told: list[DiskFull] = []
    full = disk_full(path, "the maintenance of the chain store")

    def run(self: StoreMaintainer, vacuum_pages: int = 0) -> None:
        raise full

    monkeypatch.setattr(StoreMaintainer, "run", run)

    async def go() -> None:
        with new_store(path) as store:
            upkeep = upkeep_of(path, told, every_blocks=1)
            await commit_and_keep(store, upkeep, 2)
            await upkeep.close()

    asyncio.run(go())
    assert told == [full]
