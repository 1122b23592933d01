"""`medchain app`: the explorer of a node or a patient's app on a local chain, served
by the command in its own process; it prints a link with its token, and the page
behind it answers only through that link."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from tests.api.harness import FakeNode, make_chain, served
from tests.cli.consortium import Cli, cli, patient

__all__ = ["cli"]

ROOT = Path(__file__).resolve().parents[2]
URL = re.compile(r"http://127\.0\.0\.1:\d+/\?token=[\w-]+")
FHIR = re.compile(r"base (http://127\.0\.0\.1:\d+/fhir)\s+with 'Authorization: Bearer ([\w-]+)'")
START_DEADLINE_S = 60


@contextmanager
def medchain_app(*args: str, fhir: bool = False) -> Iterator[Any]:
    """`medchain app ARGS --port 0` in a process of its own; yields the link it prints
    (with `fhir`, and the FHIR base and bearer token it prints next)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "300"}
    process = subprocess.Popen(
        [sys.executable, "-m", "medchain.cli", "app", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            found = URL.search(line)
            if found:
                yield (found.group(0), _fhir_lines(process.stdout)) if fhir else found.group(0)
                break
        else:
            pytest.fail(f"no link printed: {process.stderr.read() if process.stderr else ''}")
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(START_DEADLINE_S)


def _fhir_lines(stdout: IO[str]) -> tuple[str, str]:
    """The FHIR base and bearer token the app prints after its link."""
    text = ""
    for line in stdout:
        text += line
        found = FHIR.search(text)
        if found:
            return found.group(1), found.group(2)
    pytest.fail(f"no FHIR base and token printed: {text}")


@pytest.mark.slow
def test_the_explorer_of_a_node_answers_through_its_link() -> None:
    with (
        served(lambda: FakeNode(make_chain())) as node,
        medchain_app("--explorer", "--node", node.url) as link,
    ):
        base = link.split("/?")[0]
        assert httpx.get(base + "/").status_code == 401
        with httpx.Client(follow_redirects=True) as browser:
            page = browser.get(link)
    assert page.status_code == 200
    assert str(page.url) == base + "/"
    assert "Latest blocks" in page.text


@pytest.mark.slow
def test_a_patient_opens_their_app_on_a_local_chain(cli: Cli) -> None:
    key, _ = patient(cli, "ann")
    with (
        medchain_app("--key", str(key), "--data", str(cli.data)) as link,
        httpx.Client(follow_redirects=True) as browser,
    ):
        page = browser.get(link)
    assert page.status_code == 200
    assert "My records" in page.text
    assert "ann" in page.text


@pytest.mark.slow
def test_an_ehr_reads_a_local_chain_through_the_apps_fhir_api(cli: Cli) -> None:
    key, _ = patient(cli, "ann")
    with medchain_app("--key", str(key), "--data", str(cli.data), fhir=True) as (link, fhir):
        base, token = fhir
        found = httpx.get(f"{base}/Patient", headers={"authorization": f"Bearer {token}"})
        refused = httpx.get(f"{base}/Patient")
    assert base == link.split("/?")[0] + "/fhir"
    assert found.status_code == 200 and found.json()["resourceType"] == "Bundle"
    assert found.json()["total"] == 1  # the patient's own Patient resource
    assert refused.status_code == 401


@pytest.mark.parametrize(
    "args",
    [
        ["app"],
        ["app", "--explorer", "--key", "k.key"],
        ["app", "--explorer", "--data", "somewhere"],
    ],
)
def test_the_wrong_options_are_refused_in_one_line(cli: Cli, args: list[str]) -> None:
    output = cli(*args, ok=False)
    assert "error" in output
    assert "--key FILE" in output or "--node URL" in output
