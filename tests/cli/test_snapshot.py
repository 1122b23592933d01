"""`medchain snapshot create|list --home DIR`: make one at the stored tip, list them."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from medchain.cli import app as cli
from medchain.node import STORE_FILE, SnapshotFiles
from tests.node.snapshotchain import SnapChain, entries

runner = CliRunner()


def run(*args: str, ok: bool = True) -> str:
    result = runner.invoke(cli, list(args))
    assert result.exit_code == (0 if ok else 1), result.output
    return result.output


def test_create_then_list_shows_each_snapshot(tmp_path: Path) -> None:
    chain = SnapChain(tmp_path / STORE_FILE, entries(40))
    chain.commit({b"a": b"1"})
    home = str(tmp_path)
    assert "no snapshots" in run("snapshot", "list", "--home", home)
    assert "snapshot at height 1: 41 entries in 1 chunks" in run(
        "snapshot", "create", "--home", home
    )
    chain.commit({b"b": b"2"})  # the store stays open, as a running node's does
    run("snapshot", "create", "--home", home)
    assert SnapshotFiles(tmp_path).heights() == [1, 2]
    listing = run("snapshot", "list", "--home", home)
    for height in (1, 2):
        manifest = SnapshotFiles(tmp_path).manifest(height)
        assert manifest.state_root == chain.blocks[height].header.state_root
        assert manifest.state_root.hex()[:16] in listing
        assert manifest.block_hash.hex()[:16] in listing
    assert "41" in listing and "42" in listing


def test_create_needs_a_node_home(tmp_path: Path) -> None:
    out = run("snapshot", "create", "--home", str(tmp_path), ok=False)
    assert "holds no chain store" in out
    assert not (tmp_path / STORE_FILE).exists()
