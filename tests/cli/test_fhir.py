"""`medchain fhir`: it prints a base URL and a bearer token, and the app it serves
answers with the account's records on the chain `--data` names (served here through
an ASGI transport in the command's own thread, where the local chain lives)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fhirpy import SyncFHIRClient
from typer.testing import CliRunner

from medchain.cli import _fhir, app
from medchain.crypto import AccountKeys, format_address, save_keys
from tests.api.harness import SyncASGITransport

runner = CliRunner()


def _patient(tmp_path: Path, data: Path) -> tuple[Path, str]:
    key = tmp_path / "patient.key"
    keys = AccountKeys.generate()
    save_keys(key, keys)
    for args in (
        ["init"],
        ["register", "--key", str(key), "--role", "patient", "--name", "Jane Roe"],
    ):
        result = runner.invoke(app, [*args, "--data", str(data)])
        assert result.exit_code == 0, result.output
    return key, format_address(keys.address)


def test_fhir_prints_url_and_token_and_serves_the_accounts_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "chain"
    key, address = _patient(tmp_path, data)
    answers: dict[str, httpx.Response] = {}
    token_seen: list[str] = []

    def serve(fhir_app: FastAPI, sock: socket.socket) -> None:
        assert sock.getsockname()[0] == "127.0.0.1"
        sock.close()
        with httpx.Client(transport=SyncASGITransport(fhir_app), base_url="http://t") as http:
            answers["anonymous"] = http.get(f"/Patient/{address}")
            headers = {"Authorization": f"Bearer {token_seen[0]}"}
            answers["patient"] = http.get(f"/Patient/{address}", headers=headers)

    def remember_token() -> str:
        token_seen.append("t0k3n-" + "x" * 40)
        return token_seen[0]

    monkeypatch.setattr(_fhir, "serve", serve)
    monkeypatch.setattr(_fhir, "new_token", remember_token)
    result = runner.invoke(app, ["fhir", "--key", str(key), "--data", str(data), "--port", "0"])
    assert result.exit_code == 0, result.output
    assert re.search(r"FHIR base URL: http://127\.0\.0\.1:\d+", result.output)
    assert f"bearer token:  {token_seen[0]}" in result.output
    assert answers["anonymous"].status_code == 401
    assert answers["patient"].status_code == 200
    assert answers["patient"].json()["name"] == [{"text": "Jane Roe"}]


def test_fhir_without_a_chain_says_how_to_make_one(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    save_keys(key, AccountKeys.generate())
    result = runner.invoke(app, ["fhir", "--key", str(key), "--data", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "medchain init" in result.output


@pytest.mark.slow
def test_fhir_serves_over_a_socket_until_interrupted(tmp_path: Path) -> None:
    """The command as a launcher runs it: read the two lines from its output, call
    the URL with the token (fhirpy), stop it with Ctrl-C."""
    data = tmp_path / "chain"
    key, address = _patient(tmp_path, data)
    command = [sys.executable, "-m", "medchain.cli", "fhir", "--key", str(key)]
    process = subprocess.Popen(
        [*command, "--data", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split("FHIR base URL:")[1].strip()
        token = process.stdout.readline().split("bearer token:")[1].strip()
        client = SyncFHIRClient(url, authorization=f"Bearer {token}")
        patient = client.reference("Patient", address).to_resource()
        assert patient["name"][0]["text"] == "Jane Roe"
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) in (0, 128 + signal.SIGINT)  # stopped, not failed
