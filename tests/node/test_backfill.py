"""The backfill below a joined node's base height: blocks from peers on an in-loop
wire, accepted only when linked by hash (and matching the final anchors)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from medchain.node._backfill import Backfill, linked_block
from medchain.store import ChainStore, DiskFull
from medchain.types import (
    Allocation,
    Block,
    Genesis,
    GenesisValidator,
    SnapshotInvalid,
    block_hash,
    encode,
    sha256,
)
from tests.node.snapshotwire import Wire
from tests.waiting import until

ASKER, HONEST, LIAR = (bytes([n]) * 32 for n in range(1, 4))


@pytest.fixture
def blocks(tmp_path: Path) -> list[Block]:
    """Blocks 0 .. 8 of a real chain."""
    validator = AccountKeys.generate()
    genesis = Genesis(
        "medchain-backfill",
        1_700_000_000_000,
        allocations=(Allocation(validator.address, 1_000),),
        validators=(GenesisValidator(validator.public_key, "v0"),),
    )
    chain = LocalChain.create(tmp_path / "chain", genesis, validator)
    for _ in range(8):
        chain.seal([])
    held = list(chain.store.blocks(0))
    chain.close()
    return held


def joined(tmp_path: Path, blocks: list[Block], base: int) -> ChainStore:
    store = ChainStore(tmp_path / "joined.sqlite")
    store.initialise_from_snapshot(
        blocks[0].header.chain_id, sha256(b"genesis"), blocks[base], state=[]
    )
    return store


def serving(blocks: list[Block]) -> dict[int, bytes]:
    return {b.header.height: encode(b) for b in blocks}


def test_the_backfill_fetches_every_block_down_to_genesis(
    tmp_path: Path, blocks: list[Block]
) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        forged = serving(blocks)
        forged[3] = encode(blocks[2])  # the wrong block
        wire.peer(LIAR, None, forged.get)
        wire.peer(HONEST, None, serving(blocks).get)
        with joined(tmp_path, blocks, 6) as store:
            backfill = Backfill(store, asker, lambda: (LIAR, HONEST), retry_s=0.01)
            await backfill.run()
            assert list(store.blocks(0)) == blocks[:7]
            assert store.base_height() == 0
            assert (backfill.fetched, backfill.base_height) == (6, 0)

    asyncio.run(scenario())


def test_the_backfill_waits_for_a_peer_that_has_the_block(
    tmp_path: Path, blocks: list[Block]
) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(HONEST, None, lambda height: None)  # knows no block yet
        with joined(tmp_path, blocks, 3) as store:
            asked: list[int] = []

            def connected() -> tuple[bytes, ...]:
                asked.append(1)
                return (HONEST,) if len(asked) > 2 else ()  # no peer at first

            task = asyncio.ensure_future(Backfill(store, asker, connected, retry_s=0.01).run())
            await until(lambda: len(wire.requests.get(HONEST, [])) >= 2, what="two refusals")
            assert not task.done() and store.base_height() == 3
            wire.nodes[HONEST]._block_bytes = serving(blocks).get
            await asyncio.wait_for(task, 60)
            assert store.base_height() == 0

    asyncio.run(scenario())


def test_a_block_that_contradicts_a_final_anchor_stops_the_backfill(
    tmp_path: Path, blocks: list[Block]
) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(HONEST, None, serving(blocks).get)
        anchors = {5: block_hash(blocks[5].header), 2: sha256(b"another chain's block 2")}
        with joined(tmp_path, blocks, 6) as store:
            await Backfill(store, asker, lambda: (HONEST,), anchors.get, retry_s=0.01).run()
            assert store.base_height() == 3  # blocks 5, 4 and 3 kept; 2 refused

    asyncio.run(scenario())


def test_linked_block_checks_height_and_hash(blocks: list[Block]) -> None:
    parent = blocks[5].header.prev_hash
    assert linked_block(4, parent, encode(blocks[4])) == blocks[4]
    with pytest.raises(SnapshotInvalid, match="asked for block 4"):
        linked_block(4, parent, encode(blocks[3]))
    with pytest.raises(SnapshotInvalid, match="asked for block 3"):
        linked_block(3, parent, encode(blocks[4]))


def test_a_full_disk_ends_the_backfill_and_tells_the_node(
    tmp_path: Path, blocks: list[Block], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(HONEST, None, serving(blocks).get)
        told: list[DiskFull] = []
        with joined(tmp_path, blocks, 6) as store:

            def full(block: Block) -> None:
                raise DiskFull(tmp_path, 0, f"block {block.header.height}")

            monkeypatch.setattr(store, "insert_past_block", full)
            backfill = Backfill(store, asker, lambda: (HONEST,), on_disk_full=told.append)
            await asyncio.wait_for(backfill.run(), 60)
            assert len(told) == 1 and "block 5 was not written" in told[0].message
            assert store.base_height() == 6

    asyncio.run(scenario())
