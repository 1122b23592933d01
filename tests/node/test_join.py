"""Joining from a snapshot, unit-level: a real chain (certified blocks, a state of a few
thousand entries, snapshots on disk) served by peers on an in-loop wire, some of which
lie; and when a node does not try to join at all."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from medchain.app import state_root_of
from medchain.crypto import AccountKeys
from medchain.node import (
    LocalChain,
    Node,
    NodeConfig,
    PeerConfig,
    SnapshotFiles,
    create_devnet,
    create_snapshot,
    free_port_base,
    read_config,
)
from medchain.node._genesis_file import write_genesis
from medchain.node._join import (
    certified_block,
    checked_manifest,
    fetch_and_import,
    fetch_snapshot,
    join_from_snapshot,
    wait_for_offers,
)
from medchain.node._localchain import GENESIS_FILE, ledger_from_store
from medchain.node._snapshot_sync import SnapshotSyncFailed
from medchain.node._snapshots import import_snapshot
from medchain.store import ChainStore
from medchain.types import (
    Block,
    Certificate,
    CommitSig,
    ForkOrigin,
    Genesis,
    GenesisValidator,
    SnapshotInvalid,
    StateEntry,
    encode,
    sha256,
)
from tests.node.snapshotwire import Wire
from tests.waiting import until

ASKER, HONEST, LIAR = (bytes([n]) * 32 for n in range(1, 4))
ENTRIES = 3_000


def fork_genesis(validator: AccountKeys) -> Genesis:
    """A chain whose genesis carries a few thousand entries (a fork's starting state:
    the cheap way to a large state)."""
    state = {b"bulk/%06d" % n: b"value %d" % n * (1 + n % 5) for n in range(ENTRIES)}
    origin = ForkOrigin("medchain-parent", 10, sha256(b"parent block"), state_root_of(state))
    return Genesis(
        "medchain-join",
        1_700_000_000_000,
        validators=(GenesisValidator(validator.public_key, "v0"),),
        fork_of=(origin,),
        state=tuple(StateEntry(k, v) for k, v in sorted(state.items())),
    )


@dataclasses.dataclass
class Served:
    """A chain of a few blocks with a snapshot of its tip under `home`."""

    home: Path
    chain: LocalChain
    block: Block

    def block_bytes(self, height: int) -> bytes | None:
        block = self.chain.store.block_at(height)
        return None if block is None else encode(block)

    def lying_copy(self, home: Path, chunk: int) -> SnapshotFiles:
        """The same snapshot under `home`, one byte of chunk `chunk` changed."""
        shutil.copytree(self.home / "snapshots", home / "snapshots")
        path = home / "snapshots" / str(self.block.header.height) / f"chunk-{chunk}"
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))
        return SnapshotFiles(home)


@pytest.fixture
def served(tmp_path: Path) -> Served:
    validator = AccountKeys.generate()
    home = tmp_path / "served"
    chain = LocalChain.create(home, fork_genesis(validator), validator)
    for _ in range(3):
        chain.seal([])
    with chain.store.state_view() as view:
        manifest = create_snapshot(view, home, chunk_bytes=16_384)
    assert len(manifest.chunks) > 4
    block = chain.store.block_at(manifest.height)
    assert block is not None
    return Served(home, chain, block)


def run(coro: Coroutine[Any, Any, None]) -> None:
    asyncio.run(coro)


def test_a_snapshot_from_a_lying_and_an_honest_peer_imports_the_same_state(
    served: Served, tmp_path: Path
) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(LIAR, served.lying_copy(tmp_path / "liar", chunk=0), served.block_bytes)
        wire.peer(HONEST, SnapshotFiles(served.home), served.block_bytes)
        height = served.block.header.height
        joiner = tmp_path / "joiner"
        block, path = await fetch_snapshot(
            asker, joiner, served.chain.genesis, height, [LIAR, HONEST]
        )
        assert block == served.block
        assert asker.stats.refused["chunk_check_failed"] >= 1
        assert SnapshotFiles(joiner).heights() == [height]  # served in turn
        with ChainStore(joiner / "chain.sqlite") as store:
            import_snapshot(store, path, block, sha256(b"genesis document"))
            assert store.base_height() == store.latest_height() == height
            assert store.load_state() == served.chain.store.load_state()
            ledger = ledger_from_store(served.chain.genesis, store)
            assert ledger.state_root() == block.header.state_root

    run(scenario())


def test_a_block_without_a_quorum_certificate_is_refused(served: Served) -> None:
    genesis = served.chain.genesis
    validators = tuple(v.public_key for v in genesis.validators)
    height = served.block.header.height
    good = encode(served.block)
    assert certified_block(genesis, validators, height, good) == served.block
    with pytest.raises(SnapshotInvalid, match="asked for block 2"):
        certified_block(genesis, validators, 2, good)
    outsider = AccountKeys.generate()
    forged = dataclasses.replace(
        served.block,
        certificate=Certificate(
            height,
            0,
            served.block.certificate.block_hash,
            (CommitSig(outsider.public_key, b"\x00" * 64),),
        ),
    )
    with pytest.raises(SnapshotInvalid, match="quorum of the validators"):
        certified_block(genesis, validators, height, encode(forged))


def test_a_manifest_that_does_not_reach_the_state_root_is_refused(served: Served) -> None:
    files = SnapshotFiles(served.home)
    height = served.block.header.height
    manifest = files.manifest(height)
    assert checked_manifest(served.block, files.manifest_bytes(height)) == manifest
    lying = dataclasses.replace(manifest, bucket_roots=manifest.bucket_roots[1:])
    with pytest.raises(SnapshotInvalid):
        checked_manifest(served.block, encode(lying))


def test_a_peer_that_serves_a_forged_block_is_refused_and_another_asked(
    served: Served, tmp_path: Path
) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(
            LIAR, SnapshotFiles(served.home), lambda height: encode(served.chain.store.block_at(1))
        )
        wire.peer(HONEST, SnapshotFiles(served.home), served.block_bytes)
        height = served.block.header.height
        block, _ = await fetch_snapshot(
            asker, tmp_path / "j", served.chain.genesis, height, [LIAR, HONEST]
        )
        assert block == served.block
        assert asker.stats.refused["block_check_failed"] == 1
        with pytest.raises(SnapshotSyncFailed, match="asked for block"):
            await fetch_snapshot(asker, tmp_path / "k", served.chain.genesis, height, [LIAR])

    run(scenario())


def node_home(tmp_path: Path, genesis: Genesis) -> Path:
    home = tmp_path / "node"
    home.mkdir()
    write_genesis(home / GENESIS_FILE, genesis)
    return home


PEER = PeerConfig("v0", b"\x07" * 32, b"", "127.0.0.1", 1)


@pytest.mark.parametrize(
    "config",
    [
        NodeConfig("n", peers=(PEER,), snapshot_sync=False),
        NodeConfig("n"),  # no peers to ask
    ],
)
def test_a_node_that_may_not_join_starts_from_genesis(tmp_path: Path, config: NodeConfig) -> None:
    home = node_home(tmp_path, fork_genesis(AccountKeys.generate()))
    assert asyncio.run(join_from_snapshot(home, config)) is None
    with ChainStore(home / "chain.sqlite") as store:
        assert not store.is_initialised


def test_a_node_whose_store_holds_a_chain_does_not_join(served: Served) -> None:
    config = NodeConfig("n", peers=(PEER,))
    height = served.chain.store.latest_height()
    served.chain.close()
    assert asyncio.run(join_from_snapshot(served.home, config)) is None
    with ChainStore(served.home / "chain.sqlite") as store:
        assert store.latest_height() == height and store.base_height() == 0


class NoSnapshots:
    """A peer's snapshot files before its first snapshot."""

    def heights(self) -> list[int]:
        return []

    def manifest_bytes(self, height: int) -> bytes:
        raise SnapshotInvalid("none")

    def chunk_bytes(self, height: int, index: int) -> bytes:
        raise SnapshotInvalid("none")


def test_offers_are_taken_once_every_peer_is_connected(served: Served) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(HONEST, SnapshotFiles(served.home))
        wire.peer(LIAR, SnapshotFiles(served.home))
        connected = wire.link(ASKER).connected
        offers = await wait_for_offers(asker, connected, peers=2, wait_s=60)
        assert offers == {HONEST: (3,), LIAR: (3,)}
        # a peer not connected yet is waited for, up to the deadline
        assert await wait_for_offers(asker, connected, peers=3, wait_s=0.5) == offers

    run(scenario())


def test_a_peer_without_snapshots_hides_no_other_peers_offer(served: Served) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(LIAR, NoSnapshots())
        connected = wire.link(ASKER).connected
        assert await wait_for_offers(asker, connected, peers=1, wait_s=60) == {}
        wire.peer(HONEST, SnapshotFiles(served.home))
        offers = await wait_for_offers(asker, connected, peers=2, wait_s=60)
        assert offers == {HONEST: (3,)}

    run(scenario())


def test_an_observer_joins_a_running_node_in_process_and_backfills(tmp_path: Path) -> None:
    """The whole path over real P2P on loopback: a validator's node makes snapshots;
    a fresh observer joins from the latest, starts there, follows the chain and
    fetches the blocks below."""

    async def scenario() -> None:
        base = free_port_base(2)
        devnet = create_devnet(
            tmp_path, 1, "pbft", observers=1, api_port=base, p2p_port=base + 500,
            block_interval_ms=50,
        )  # fmt: skip
        validator_home, observer_home = (n.home for n in devnet.nodes)
        config = dataclasses.replace(read_config(validator_home), snapshot_interval=5)
        validator = Node(validator_home, config)
        await validator.start()
        observer: Node | None = None
        try:
            files = SnapshotFiles(validator_home)
            await until(lambda: files.heights(), what="the validator's first snapshot")
            joined = await join_from_snapshot(observer_home, read_config(observer_home))
            assert joined is not None and joined.height in files.heights()
            observer = Node(observer_home, snapshot_stats=joined.stats)
            assert observer.app.store.base_height() == joined.height
            await observer.start()
            target = validator.app.height + 2
            await until(lambda: observer.app.height >= target, what="the observer following")
            await until(lambda: observer.app.store.base_height() == 0, what="the backfill")
            for height in (0, joined.height, target):
                assert observer.app.store.block_at(height) == validator.app.store.block_at(height)
            fetched = observer.metrics_registry.get_sample_value(
                "medchain_snapshot_fetched_total", {"what": "chunk"}
            )
            assert fetched is not None and fetched >= 1
        finally:
            if observer is not None:
                await observer.close()
            await validator.close()

    asyncio.run(scenario())


class FakeHeight(NoSnapshots):
    """A peer that offers a snapshot at a height the chain has not reached."""

    def heights(self) -> list[int]:
        return [99]


def test_a_height_no_peer_can_prove_gives_way_to_a_lower_one(
    served: Served, tmp_path: Path
) -> None:
    async def scenario() -> None:
        wire = Wire()
        asker = wire.peer(ASKER)
        wire.peer(LIAR, FakeHeight(), lambda height: None)
        wire.peer(HONEST, SnapshotFiles(served.home), served.block_bytes)
        offers = await wait_for_offers(asker, wire.link(ASKER).connected, 2, 60)
        assert offers == {LIAR: (99,), HONEST: (3,)}
        home = tmp_path / "joiner"
        genesis = served.chain.genesis
        assert await fetch_and_import(asker, home, genesis, offers) == 3
        with ChainStore(home / "chain.sqlite") as store:
            assert store.base_height() == 3
            assert store.load_state() == served.chain.store.load_state()
        with pytest.raises(SnapshotSyncFailed, match="block at height 99"):
            await fetch_and_import(asker, tmp_path / "other", genesis, {LIAR: (99,)})

    run(scenario())
