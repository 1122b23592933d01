"""A ward on a test chain served by a node's API over a socket: a patient, two
credentialed doctors and a stranger; the web app of any of them (or the explorer)
served by uvicorn on 127.0.0.1, logged in or not."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from playwright.sync_api import BrowserContext, expect
from starlette.applications import Starlette

from medchain.anchor import AnchorSettings, Mismatch, VerifyReport
from medchain.app import Role
from medchain.client import HttpChain, MedchainClient
from medchain.crypto import AccountKeys
from medchain.node import AnchoringStatus, LocalChain
from medchain.web import Secrets, explorer_app, person_app
from medchain.web._serve import bind
from tests.api.harness import FakeNode, Served, clinician, make_chain, served
from tests.web.browser import chromium

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
PATIENT_NAME = "Jane Roe"
DOCTOR_NAME = "Dr. Ada Quill"
SECOND_DOCTOR_NAME = "Dr. Ben Osei"


@dataclass(frozen=True)
class Ward:
    node: Served
    patient: AccountKeys
    doctor: AccountKeys
    second: AccountKeys
    stranger: AccountKeys
    """Registered, holds no credential and no grant."""

    def client(self, keys: AccountKeys) -> MedchainClient:
        return MedchainClient(keys, HttpChain(self.node.url, timeout_s=10))

    def doctor_writes(self, resource: dict[str, Any] | None = None) -> bytes:
        """The doctor writes a record for the patient (a condition by default), in a
        block of its own; returns its id."""
        condition = json.loads((EXAMPLES / "condition.json").read_text())
        return self.client(self.doctor).put_record(self.patient.address, resource or condition)


def verified_report(alarm: Mismatch | None = None, pending: Mismatch | None = None) -> VerifyReport:
    """A check of a chain against its anchors: verified up to height 10, one invalid
    anchor, one pending; `alarm` and `pending` the disagreements it found."""
    return VerifyReport("medchain-test", 14, 14, 10, 3, 2, 1, (4,), 0, alarm, pending)


class AnchoringNode(FakeNode):
    """A node that anchors on Ethereum, whose latest check of its chain found `report`."""

    def __init__(self, chain: LocalChain, report: VerifyReport | None) -> None:
        super().__init__(chain)
        self.report = report

    def anchoring_status(self) -> AnchoringStatus:
        settings = AnchorSettings("http://127.0.0.1:8545", 1337, "0x" + "ab" * 20)
        return AnchoringStatus(settings, True, 12, 10, 3, "", self.report, 1_700_000_000_000)


def _populate(keys: dict[str, AccountKeys]) -> FakeNode:
    chain = make_chain()
    MedchainClient(keys["patient"], chain).register(Role.PATIENT, PATIENT_NAME)
    MedchainClient(keys["stranger"], chain).register(Role.PATIENT, "Sam Stranger")
    clinician(chain, DOCTOR_NAME, keys=keys["doctor"])
    clinician(chain, SECOND_DOCTOR_NAME, keys=keys["second"])
    return AnchoringNode(chain, verified_report())


@pytest.fixture
def ward() -> Iterator[Ward]:
    keys = {name: AccountKeys.generate() for name in ("patient", "doctor", "second", "stranger")}
    with served(lambda: _populate(keys)) as node:
        yield Ward(node, **keys)


@dataclass(frozen=True)
class RunningApp:
    url: str
    port: int
    keys: Secrets

    @property
    def login_url(self) -> str:
        return f"{self.url}/?token={self.keys.url_token}"

    @contextmanager
    def browser(self) -> Iterator[httpx.Client]:
        """An HTTP client that opened the printed link: it holds the session cookie."""
        with httpx.Client(base_url=self.url, timeout=30) as client:
            assert client.get(self.login_url).status_code == 303
            yield client


@contextmanager
def running(make_app: Callable[[int, Secrets], Starlette]) -> Iterator[RunningApp]:
    """The app `make_app` builds, served by uvicorn on 127.0.0.1 in a thread."""
    sock = bind(0)
    port = int(sock.getsockname()[1])
    keys = Secrets()
    server = uvicorn.Server(
        uvicorn.Config(make_app(port, keys), log_level="warning", timeout_graceful_shutdown=1)
    )
    thread = threading.Thread(target=asyncio.run, args=(server.serve([sock]),), daemon=True)
    thread.start()
    try:
        yield RunningApp(f"http://127.0.0.1:{port}", port, keys)
    finally:
        server.should_exit = True
        thread.join(20)
        sock.close()


def node_chain(ward: Ward) -> Callable[[], Any]:
    return lambda: HttpChain(ward.node.url, timeout_s=10)


@pytest.fixture
def explorer(ward: Ward) -> Iterator[RunningApp]:
    with running(lambda port, keys: explorer_app(node_chain(ward), port, keys)) as app:
        yield app


@contextmanager
def app_of(ward: Ward, keys: AccountKeys) -> Iterator[RunningApp]:
    with running(lambda port, secrets: person_app(keys, node_chain(ward), port, secrets)) as app:
        yield app


WAIT_MS = 30_000
"""Generous, for everything the browser tests' pages wait on."""


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """A headless Chromium with a fresh profile (tests/web/browser.py)."""
    with chromium(tmp_path / "profile") as context:
        context.set_default_timeout(WAIT_MS)
        expect.set_options(timeout=WAIT_MS)
        yield context
