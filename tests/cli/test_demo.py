"""`medchain demo`: the story on the in-process chain, on a node given with --node
(uvicorn serving an in-memory chain), and on a fresh devnet of node processes,
which is always stopped, even when the story fails."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import medchain.cli._demo as demo_module
from medchain.cli import app
from medchain.crypto import AccountKeys, save_keys
from medchain.node import load_devnet, read_pid
from medchain.types import MedchainError
from tests.api.harness import FOUNDERS, FakeNode, make_chain, served

runner = CliRunner()


def _demo(*args: str) -> str:
    result = runner.invoke(app, ["demo", *args])
    assert result.exit_code == 0, result.output
    assert "every check passed" in result.output
    return result.output


def test_local_story(tmp_path: Path) -> None:
    out = _demo("--local", "--data", str(tmp_path / "chain"))
    assert "NonceReused" in out and "height and state root did not move" in out
    assert "the validator gains 115,000 votes" in out
    assert (tmp_path / "chain" / "chain.sqlite").exists()


def test_story_on_a_node(tmp_path: Path) -> None:
    """--node: the story over HTTP; one node known, so no comparison; the faucet pays
    for staking; nothing to kill."""
    validator = AccountKeys.generate()
    save_keys(tmp_path / "faucet.key", validator)
    for org in FOUNDERS:  # the founders' key files, as a devnet keeps them
        save_keys(tmp_path / "orgs" / org.org_id / "admin.key", org.admin)
        save_keys(tmp_path / "orgs" / org.org_id / "org.key", org.account)
    with served(lambda: FakeNode(make_chain(validator))) as node:
        out = _demo(
            "--node", node.url, "--faucet", str(tmp_path / "faucet.key"),
            "--orgs", str(tmp_path / "orgs"),
        )  # fmt: skip
    assert "HTTP 409 nonce_reused" in out and "HTTP 413 tx_too_large" in out
    assert "HTTP 400 malformed_tx" in out and "HTTP 409 key_image_reused" in out
    assert "not applied again: the node answers with its original receipt" in out
    assert "one node known" in out and "out of reach" in out
    assert "kills and restarts only nodes it started itself" in out
    assert "the leading validator gains 115,000 votes" in out


def test_bad_option_combinations(tmp_path: Path) -> None:
    for args in (
        ["--local", "--node", "http://127.0.0.1:1"],
        ["--faucet", str(tmp_path / "x.key")],
        ["--orgs", str(tmp_path)],
        ["--node", "http://127.0.0.1:1", "--data", str(tmp_path)],
    ):
        result = runner.invoke(app, ["demo", *args])
        assert result.exit_code == 1, result.output


def test_a_node_without_the_organisations_keys_is_one_line(tmp_path: Path) -> None:
    with served(lambda: FakeNode(make_chain())) as node:
        result = runner.invoke(app, ["demo", "--node", node.url, "--orgs", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "give --orgs DIR" in result.output.strip().splitlines()[-1]


def _stopped(home: Path) -> bool:
    return all(read_pid(n.home) is None for n in load_devnet(home).nodes)


@pytest.mark.slow
def test_story_on_a_devnet(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    out = _demo("--data", str(home))
    assert "4 validators (afbft) up" in out
    assert out.count("hold the same block") >= 2  # after the records, and after the restart
    for node in ("node1", "node2", "node3"):
        assert f"the trail read from {node} is the same" in out
    assert "the keyword is nowhere in the database (12 files" in out  # 4 nodes' SQLite files
    for refusal in ("409 nonce_reused", "400 invalid_signature", "413 tx_too_large"):
        assert f"HTTP {refusal}" in out
    assert "killed with SIGKILL" in out and "catches up" in out
    assert "the API docs were at http://127.0.0.1:" in out
    assert _stopped(home)


@pytest.mark.slow
def test_devnet_is_stopped_when_the_story_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: object) -> None:
        raise MedchainError("the story broke")

    monkeypatch.setattr(demo_module, "run_story", fail)
    home = tmp_path / "devnet"
    result = runner.invoke(app, ["demo", "--data", str(home)])
    assert result.exit_code == 1 and "the story broke" in result.output
    assert "stopped the devnet's 4 node processes" in result.output
    assert _stopped(home)
