"""Restore: the store is rebuilt up to the last anchored good block by replaying the
stored blocks, the old file is kept beside it, and the node carries on from there."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from medchain.anchor import AnchorSettings
from medchain.node import (
    PID_FILE,
    STORE_FILE,
    LedgerApp,
    NodeConfig,
    NodeRunning,
    RecoverError,
    anchor_settings,
    genesis_hash,
    recover_store,
    write_config,
)
from medchain.node._restore import replay
from medchain.store import ChainStore
from medchain.types import Block, MedchainError, block_hash
from tests.anchor.test_verify import Chain, make_anchor, make_chain, other_tx, rewrite
from tests.waiting import wait_until


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    made = make_chain(tmp_path / "node", 30)
    yield made
    made.local.close()


def _blocks(chain: Chain) -> list[Block]:
    return list(chain.store.blocks())


def _stop(chain: Chain) -> list[Block]:
    """What a stopped node leaves: its blocks (read before stopping) and a closed store."""
    blocks = _blocks(chain)
    chain.local.close()
    return blocks


def _open(chain: Chain) -> ChainStore:
    return ChainStore(chain.path, chain_id=chain.genesis.chain_id)


def _side_files(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(path.name + "-"))


def test_recover_keeps_the_last_anchored_good_block_and_the_node_resyncs(chain: Chain) -> None:
    anchors = chain.anchors()
    blocks = _stop(chain)
    rewrite(chain.path, 22, other_tx(chain, blocks[22]))  # damage above the anchor at 20
    report = recover_store(chain.home, chain.genesis, anchors)
    assert (report.old_tip, report.kept_height, report.removed_blocks) == (30, 20, 10)
    assert report.anchored and "final anchor" in report.note
    assert report.block_hash == block_hash(blocks[20].header)
    assert report.state_root == blocks[20].header.state_root
    assert report.verify.first_mismatch is not None
    assert report.verify.first_mismatch.what == "tx_root"
    assert report.backup == chain.home / f"{STORE_FILE}.bad-20"
    assert _side_files(chain.path) == []
    with _open(chain) as store:
        assert store.latest_height() == 20
        assert store.state_root() == blocks[20].header.state_root
        # the stored state is the state at 20 (LedgerApp checks it against the root)
        assert LedgerApp(chain.genesis, store).ledger.state_root() == store.state_root()
        assert [store.block_at(h) for h in range(21)] == blocks[:21]
    with ChainStore(report.backup) as old:  # the damaged file, whole, for inspection
        assert old.latest_height() == 30
    # started again, the node takes the rest from its peers (here: the honest blocks)
    app = LedgerApp(chain.genesis, _open(chain))
    for block in blocks[21:]:
        app.commit(block)
    assert app.last_block() == blocks[30]
    app.store.close()
    assert recover_store(chain.home, chain.genesis, anchors).removed_blocks == 0


def test_recover_from_a_chain_the_final_anchors_contradict(chain: Chain) -> None:
    """The store holds a chain that forked off at 17 (an attacker's): the final
    anchors from 20 on name other blocks."""
    anchors = chain.anchors(upto=15) + [
        make_anchor(chain.validators[1:], h, bytes([h]) * 32, b"\x01" * 32) for h in (20, 25, 30)
    ]
    _stop(chain)
    report = recover_store(chain.home, chain.genesis, anchors)
    assert report.kept_height == 15 and report.anchored and report.removed_blocks == 15
    assert report.verify.first_mismatch is not None
    assert report.verify.first_mismatch.what == "block_hash"


def test_without_a_matching_final_anchor_the_intact_prefix_is_kept(chain: Chain) -> None:
    pending = chain.anchors(final=False)
    blocks = _stop(chain)
    rewrite(chain.path, 13, other_tx(chain, blocks[13]))
    report = recover_store(chain.home, chain.genesis, pending)
    assert report.kept_height == 12 and not report.anchored
    assert "no final anchor" in report.note and "intact prefix" in report.note
    with _open(chain) as store:
        assert store.latest_height() == 12
        assert store.state_root() == blocks[12].header.state_root


def test_a_damaged_genesis_row_keeps_only_the_genesis_block(chain: Chain) -> None:
    blocks = _stop(chain)
    header = dataclasses.replace(blocks[0].header, time_ms=1)
    rewrite(chain.path, 0, dataclasses.replace(blocks[0], header=header))
    report = recover_store(chain.home, chain.genesis, [])
    assert report.kept_height == 0 and report.removed_blocks == 30
    with _open(chain) as store:
        assert store.latest_block() == blocks[0]


def test_a_crashed_nodes_uncommitted_wal_is_kept_in_the_backup(
    chain: Chain, tmp_path: Path
) -> None:
    """Copy the files while the node still has them open (what SIGKILL leaves): the
    newest blocks are only in chain.sqlite-wal. Recover folds it in before it moves
    the file, so the backup is whole and no stale WAL is left beside the new file."""
    anchors = chain.anchors()
    crashed = tmp_path / "crashed"
    shutil.copytree(chain.home, crashed)
    assert (crashed / f"{STORE_FILE}-wal").stat().st_size > 0
    chain.local.close()
    report = recover_store(crashed, chain.genesis, anchors)
    assert report.kept_height == 30 and report.removed_blocks == 0
    assert _side_files(crashed / STORE_FILE) == []
    with ChainStore(report.backup) as old:
        assert old.latest_height() == 30


def test_recover_refuses_a_running_node(chain: Chain) -> None:
    anchors = chain.anchors()
    _stop(chain)
    sleeper = subprocess.Popen(
        # a process that looks like a running node and lives until killed
        [sys.executable, "-c", "import time; time.sleep(60)", "node", "--home", str(chain.home)]
    )
    try:
        cmdline = Path(f"/proc/{sleeper.pid}/cmdline")
        # just after exec the kernel may show an empty command line
        wait_until(
            lambda: not cmdline.exists() or b"node" in cmdline.read_bytes().split(b"\0"),
            what="the stand-in node's command line",
        )
        (chain.home / PID_FILE).write_text(str(sleeper.pid))
        with pytest.raises(NodeRunning, match="is running") as caught:
            recover_store(chain.home, chain.genesis, anchors)
        assert "stop it first" in caught.value.message
        assert not list(chain.home.glob("*.bad-*"))
    finally:
        sleeper.kill()
        sleeper.wait()


def test_recover_refuses_a_missing_store_and_another_genesis(chain: Chain, tmp_path: Path) -> None:
    _stop(chain)
    other = dataclasses.replace(chain.genesis, time_ms=chain.genesis.time_ms + 1)
    with pytest.raises(RecoverError, match="another genesis"):
        recover_store(chain.home, other, [])
    with pytest.raises(RecoverError, match="nothing to recover"):
        recover_store(tmp_path / "empty", chain.genesis, [])
    (tmp_path / "fresh").mkdir()
    ChainStore(tmp_path / "fresh" / STORE_FILE).close()  # created, never initialised
    with pytest.raises(RecoverError, match="holds no chain yet"):
        recover_store(tmp_path / "fresh", chain.genesis, [])
    assert not list(chain.home.glob("*.bad-*"))


def test_recover_refuses_a_store_joined_from_a_snapshot(chain: Chain, tmp_path: Path) -> None:
    blocks = _stop(chain)
    home = tmp_path / "joined"
    with ChainStore(home / STORE_FILE) as joined:
        joined.initialise_from_snapshot(
            chain.genesis.chain_id, genesis_hash(chain.genesis), blocks[12], state=[]
        )
    with pytest.raises(RecoverError, match="holds blocks from height 12 only"):
        recover_store(home, chain.genesis, [])
    assert not list(home.glob("*.bad-*"))


def test_replay_stops_at_a_block_that_does_not_re_execute(chain: Chain) -> None:
    blocks = _blocks(chain)
    header = dataclasses.replace(blocks[4].header, state_root=b"\x07" * 32)
    bad = dataclasses.replace(blocks[4], header=header)
    app = LedgerApp(chain.genesis)
    assert replay(app, [*blocks[1:4], bad, *blocks[5:]]) == 3
    assert app.ledger.state_root() == blocks[3].header.state_root


def test_anchor_settings_come_from_the_config_or_say_what_to_add(tmp_path: Path) -> None:
    write_config(tmp_path, NodeConfig("lonely"))
    with pytest.raises(MedchainError, match="no anchor section"):
        anchor_settings(tmp_path)
    settings = AnchorSettings("http://127.0.0.1:8545", 1337, "0x" + "ab" * 20)
    write_config(tmp_path, NodeConfig("anchored", extra={"anchor": settings.to_json()}))
    assert anchor_settings(tmp_path) == settings
