"""`medchain gateway init` and `medchain reading prove`, in process: the gateway app over
an ASGI transport on a LocalChain (the `world` of the gateway service tests)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from medchain.cli import _gateway as gw
from medchain.cli import app
from medchain.crypto import AccountKeys, load_keys, save_keys
from medchain.gateway._config import GATEWAY_KEY_FILE, load_config
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import create_gateway_app
from tests.api.harness import SyncASGITransport
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)

runner = CliRunner()


def test_init_writes_a_home_that_loads(tmp_path: Path) -> None:
    home = tmp_path / "gw"
    result = runner.invoke(
        app, ["gateway", "init", "--home", str(home), "--node", "http://n:8601", "--port", "8711"]
    )
    assert result.exit_code == 0, result.output
    config = load_config(home)
    assert (config.node_url, config.port) == ("http://n:8601", 8711)
    keys = load_keys(home / GATEWAY_KEY_FILE)
    assert keys.address_text in result.output
    assert f"medchain gateways register {keys.address_text}" in result.output
    again = runner.invoke(app, ["gateway", "init", "--home", str(home), "--node", "http://n"])
    assert again.exit_code == 1 and "already a gateway home" in again.output
    bad = runner.invoke(
        app, ["gateway", "init", "--home", str(tmp_path / "b"), "--node", "x", "--port", "0"]
    )
    assert bad.exit_code == 2 and not (tmp_path / "b" / GATEWAY_KEY_FILE).exists()  # range


def test_init_takes_the_url_patients_reach_the_gateway_at(tmp_path: Path) -> None:
    home = tmp_path / "gw"
    args = ["gateway", "init", "--home", str(home), "--node", "http://n:8601", "--host", "0.0.0.0"]
    result = runner.invoke(app, [*args, "--public-url", "https://edge.example"])
    assert result.exit_code == 0, result.output
    assert load_config(home).api_url == "https://edge.example"
    bad = runner.invoke(app, [*args[:3], str(tmp_path / "b"), *args[4:], "--public-url", "edge"])
    assert bad.exit_code == 1 and "public_url must be the http" in bad.output
    assert not (tmp_path / "b" / GATEWAY_KEY_FILE).exists()


def test_gateway_without_home_shows_help() -> None:
    result = runner.invoke(app, ["gateway"])
    assert result.exit_code == 2 and "init" in result.output


def test_reading_prove_command(
    world: World,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    keys = {}
    for name, account in (("patient", world.patient.keys), ("stranger", AccountKeys.generate())):
        keys[name] = str(tmp_path / f"{name}.key")
        save_keys(Path(keys[name]), account)
    service = world.service(ReadingIndex(":memory:"))
    sim = world.device()
    rid = service.submit(sim.next_reading()).reading_id
    service.flush()

    @contextlib.contextmanager
    def chain(_: str) -> Iterator[Any]:
        yield world.chain

    monkeypatch.setattr(gw, "HttpChain", chain)
    app_ = create_gateway_app(service, background=False, threads=False)
    fresh = httpx.Client  # each command closes its client
    monkeypatch.setattr(
        httpx,
        "Client",
        lambda **_: fresh(transport=SyncASGITransport(app_), base_url="http://gw"),
    )
    as_patient = ["--key", keys["patient"]]
    result = runner.invoke(app, ["reading", "prove", rid.hex(), *as_patient])
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "leaf:        0 of 1" in result.output
    as_json = runner.invoke(app, ["reading", "prove", rid.hex(), "--json", *as_patient])
    assert json.loads(as_json.output)["verified"] is True
    logged = service.disclosures.entries  # type: ignore[attr-defined]
    assert [(d.reader, d.purpose) for d in logged] == [(world.patient.address, "HOPERAT")] * 2
    unknown = runner.invoke(app, ["reading", "prove", "ab" * 32, *as_patient])
    assert unknown.exit_code == 1 and "knows no reading" in unknown.output
    stranger = runner.invoke(app, ["reading", "prove", rid.hex(), "--key", keys["stranger"]])
    assert stranger.exit_code == 1 and "may not ask about readings" in stranger.output
    assert runner.invoke(app, ["reading", "prove", "zz", *as_patient]).exit_code == 1
