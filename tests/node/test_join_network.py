"""Snapshot sync on a multi-process devnet: a fresh observer joins a chain with a large
state from its validators' snapshots, one of which serves a corrupted chunk."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from medchain.app import genesis_state, state_root_of
from medchain.crypto import format_address, load_keys
from medchain.node import (
    GENESIS_FILE,
    NODE_KEY_FILE,
    SNAPSHOTS_DIR,
    read_config,
    read_genesis,
    write_config,
    write_genesis,
)
from medchain.types import ForkOrigin, Genesis, StateEntry, sha256
from tests.node.netharness import PATIENCE_S, START_S, LiveNet, live_net, wait_for

pytestmark = pytest.mark.slow

BULK_ENTRIES = 30_000
SNAPSHOT_INTERVAL = 100
"""Blocks between snapshots: the observer joins from the first one, long before the
next (the watcher below corrupts that one too, should the observer be late)."""


def large_genesis(genesis: Genesis) -> Genesis:
    """The devnet's genesis with tens of thousands of entries more: a fork's genesis,
    whose `state` is the parent's state at the fork (the cheap way to a large state)."""
    state = genesis_state(genesis).committed()
    state.update({b"bulk/%06d" % n: b"entry %d " % n * (1 + n % 4) for n in range(BULK_ENTRIES)})
    origin = ForkOrigin("medchain-parent", 1, sha256(b"parent block 1"), state_root_of(state))
    return dataclasses.replace(
        genesis,
        allocations=(),
        organisations=(),  # carried in the state, as a fork's are
        fork_of=(origin,),
        state=tuple(StateEntry(k, v) for k, v in sorted(state.items())),
    )


def prepare(net: LiveNet) -> None:
    """Every node gets the large genesis; validators snapshot every SNAPSHOT_INTERVAL
    blocks."""
    genesis = large_genesis(read_genesis(net.devnet.nodes[0].home / GENESIS_FILE))
    for node in net.devnet.nodes:
        write_genesis(node.home / GENESIS_FILE, genesis)
        config = read_config(node.home)
        write_config(node.home, dataclasses.replace(config, snapshot_interval=SNAPSHOT_INTERVAL))


def corrupt_chunks(snapshots: Path, done: set[Path]) -> None:
    """Flip a byte in the middle of chunk 0 of every finished snapshot not done yet."""
    for chunk in sorted(snapshots.glob("[0-9]*/chunk-0")):
        if chunk not in done:
            data = bytearray(chunk.read_bytes())
            data[len(data) // 2] ^= 0xFF
            chunk.write_bytes(bytes(data))
            done.add(chunk)


@pytest.fixture
def liar_watch() -> Iterator[tuple[list[Path], threading.Event]]:
    """A thread that keeps corrupting the snapshots of the directory put in the list."""
    where: list[Path] = []
    stop = threading.Event()

    def watch() -> None:
        done: set[Path] = set()
        while not stop.wait(0.01):  # poll interval
            if where:
                corrupt_chunks(where[0], done)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield where, stop
    stop.set()
    thread.join()


def metric_value(text: str, sample: str) -> float:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_fresh_observer_joins_from_snapshots_despite_a_corrupted_chunk(
    tmp_path: Path, liar_watch: tuple[list[Path], threading.Event]
) -> None:
    with live_net(tmp_path, 4, "pbft", observers=1) as net:
        prepare(net)
        validators = [n.name for n in net.devnet.nodes if n.validator]
        observer = next(n.name for n in net.devnet.nodes if not n.validator)
        net.start(validators)
        net.wait_height(validators, SNAPSHOT_INTERVAL)
        homes = {name: net.node(name).home for name in validators}
        wait_for(
            lambda: all(any((h / SNAPSHOTS_DIR).glob("*/manifest")) for h in homes.values()),
            PATIENCE_S,
            "every validator's first snapshot",
        )
        # the observer asks the validator with the lowest key first for the first chunk
        liar = min(validators, key=lambda n: load_keys(homes[n] / NODE_KEY_FILE).public_key)
        liar_watch[0].append(homes[liar] / SNAPSHOTS_DIR)
        wait_for(
            lambda: (
                bool(list((homes[liar] / SNAPSHOTS_DIR).glob("*/chunk-0")))
                and all(
                    p.stat().st_size > 0 for p in (homes[liar] / SNAPSHOTS_DIR).glob("*/chunk-0")
                )
            ),
            PATIENCE_S,
            "the corrupted chunk",
        )

        net.start([observer], wait=False)
        net.processes.wait_healthy([observer], START_S)
        joined = net.status(observer)
        assert joined["height"] >= SNAPSHOT_INTERVAL
        metrics = net.http.get(f"{net.url(observer)}/metrics").text
        assert (
            metric_value(metrics, 'medchain_snapshot_refused_total{cause="chunk_check_failed"}')
            >= 1
        )
        assert metric_value(metrics, 'medchain_snapshot_fetched_total{what="chunk"}') >= 1

        common = joined["height"] + 3
        net.wait_height([observer, *validators], common)
        roots = {net.block(n, common)["state_root"] for n in [observer, *validators]}
        assert len(roots) == 1, f"state roots differ at height {common}: {roots}"

        faucet = format_address(net.faucet.address)
        balances = {
            n: net.http.get(f"{net.url(n)}/v1/accounts/{faucet}").json()["balance"]
            for n in (observer, validators[0])
        }
        assert balances[observer] == balances[validators[0]] > 0

        wait_for(
            lambda: net.http.get(f"{net.url(observer)}/v1/blocks/0").status_code == 200,
            PATIENCE_S,
            "the backfill down to genesis",
        )
        assert net.metric(observer, "medchain_store_base_height") == 0
        for height in (0, 1, SNAPSHOT_INTERVAL // 2):
            assert net.block(observer, height)["hash"] == net.block(validators[0], height)["hash"]
