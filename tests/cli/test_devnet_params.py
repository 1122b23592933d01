"""`medchain devnet up --param NAME=VALUE`: a new devnet's genesis with chain parameters
overridden (e.g. a short device restriction, so a test sees restricted then banned),
and a clear error for an unknown name or a bad value before anything is written. The
node processes are not started here (`_start_all` is replaced)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from medchain.cli import _node, app
from medchain.node import DEVNET_FILE, GENESIS_FILE, load_devnet, read_genesis
from medchain.types import ChainParams

runner = CliRunner()


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    started: list[str] = []
    monkeypatch.setattr(_node, "_start_all", lambda devnet: started.append(devnet.chain_id))
    return started


def _up(home: Path, *extra: str) -> list[str]:
    return ["devnet", "up", "--home", str(home), "--no-anchor", "--detach", *extra]


def test_param_overrides_the_genesis(tmp_path: Path, no_processes: list[str]) -> None:
    home = tmp_path / "net"
    args = _up(home, "--nodes", "1", "--consensus", "pbft")
    result = runner.invoke(
        app, [*args, "--param", "device_restrict_blocks=8", "--param", "device_strikes_ban=4"]
    )
    assert result.exit_code == 0, result.output
    assert "chain parameters: device_strikes_ban=4, device_restrict_blocks=8" in result.output
    params = read_genesis(load_devnet(home).nodes[0].home / GENESIS_FILE).params
    assert (params.device_restrict_blocks, params.device_strikes_ban) == (8, 4)
    assert params.device_strikes_restrict == ChainParams().device_strikes_restrict
    assert params.consensus == "pbft" and no_processes
    # an existing devnet keeps its genesis, and says so
    again = runner.invoke(app, [*args, "--param", "device_restrict_blocks=9"])
    assert again.exit_code == 0, again.output
    assert "--param applies to a new devnet only" in again.output
    params = read_genesis(load_devnet(home).nodes[0].home / GENESIS_FILE).params
    assert params.device_restrict_blocks == 8


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("device_restrict_blockz=8", "'device_restrict_blockz' is not a chain parameter"),
        ("device_restrict_blocks=eight", "the value is a whole number"),
        ("device_restrict_blocks=-1", "the value is a whole number"),
        ("device_restrict_blocks", "expected NAME=INTEGER"),
        ("consensus=dpos", "'consensus' is not a chain parameter"),
    ],
)
def test_bad_param_is_refused_before_anything_is_written(
    tmp_path: Path, no_processes: list[str], spec: str, says: str
) -> None:
    home = tmp_path / "net"
    result = runner.invoke(app, [*_up(home), "--param", spec])
    assert result.exit_code == 1
    assert says in " ".join(result.output.split()), result.output
    assert not (home / DEVNET_FILE).exists() and not no_processes


def test_up_names_the_founding_organisations_key_files(
    tmp_path: Path, no_processes: list[str]
) -> None:
    home = tmp_path / "net"
    result = runner.invoke(app, _up(home, "--nodes", "4"))
    assert result.exit_code == 0, result.output
    assert "founding organisations (st-mary, riverside, northlab, civic-insure)" in result.output
    assert (home / "orgs" / "st-mary" / "admin.key").exists()
    assert (home / "orgs" / "civic-insure" / "org.key").exists()
