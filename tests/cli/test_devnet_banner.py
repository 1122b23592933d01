"""`medchain devnet up` prints how to open the web app against the devnet it starts: the
explorer's command and an account's, both naming the first node's API. The node
processes are not started here (`_start_all` is replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.cli import _node, app
from medchain.node import load_devnet

runner = CliRunner()


def test_the_banner_says_how_to_open_the_app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_node, "_start_all", lambda devnet: None)
    home = tmp_path / "net"
    args = ["devnet", "up", "--home", str(home), "--no-anchor", "--detach", "--nodes", "2"]
    result = runner.invoke(app, [*args, "--api-port", "8750"])
    assert result.exit_code == 0, result.output
    node = load_devnet(home).nodes[0].api_url
    assert node == "http://127.0.0.1:8750"
    assert f"medchain app --explorer --node {node}\n" in result.output
    assert f"medchain app --key FILE --node {node}  (" in result.output
