"""FHIR facades of several accounts on one in-memory chain, served by uvicorn on
127.0.0.1: each account's app is mounted under `/<name>`, so each has its own base URL
(`facades.url(name)`) and token, as separate processes would: a patient, two
doctors (one a stranger to the patient) and a research organisation. The chain and the
server share one thread (the chain's SQLite lives there); `call` runs code on it."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette
from starlette.routing import Mount

from medchain.app import Role
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys
from medchain.fhir._server import create_fhir_app
from medchain.fhir._source import AccountSource
from medchain.fhir._token import new_token
from medchain.node import LocalChain
from tests.api.harness import enlist, institution, make_chain

T = TypeVar("T")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ACCOUNTS = {"patient": Role.PATIENT, "doctor": Role.DOCTOR, "stranger": Role.DOCTOR}


@dataclass
class Facades:
    base: str
    tokens: dict[str, str]
    people: dict[str, MedchainClient]
    sources: dict[str, AccountSource]
    chain: LocalChain
    loop: asyncio.AbstractEventLoop
    recorder: Recorder

    def url(self, name: str) -> str:
        return f"{self.base}/{name}"

    def headers(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    def call(self, fn: Callable[[Facades], T]) -> T:
        """Run `fn(self)` on the server's thread, where the chain lives."""

        async def run() -> T:
            return fn(self)

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(120)


@dataclass(frozen=True)
class Answer:
    path: str
    status: int
    content_type: str
    body: bytes


class Recorder:
    """ASGI middleware keeping every response, so tests can check each body."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.answers: list[Answer] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Any) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body"):  # kept before the client has it
                    content_type = dict(start["headers"]).get(b"content-type", b"").decode()
                    body = b"".join(chunks)
                    self.answers.append(Answer(scope["path"], start["status"], content_type, body))
            await send(message)

        await self.app(scope, receive, capture)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test's thread is not the main one
        pass


def _apps(people: dict[str, MedchainClient]) -> tuple[Starlette, dict[str, str], dict[str, Any]]:
    tokens = {name: new_token() for name in people}
    sources = {name: AccountSource(client) for name, client in people.items()}
    routes = [
        Mount(f"/{name}", app=create_fhir_app(sources[name], tokens[name])) for name in people
    ]
    return Starlette(routes=routes), tokens, sources


@contextmanager
def facades() -> Iterator[Facades]:
    ready = threading.Event()
    found: dict[str, Any] = {}

    async def main() -> None:
        try:
            chain = make_chain()
            people = {
                name: enlist(MedchainClient(AccountKeys.generate(), chain), role, name)
                for name, role in ACCOUNTS.items()
            }
            people["research"] = institution(chain)
            app, tokens, sources = _apps(people)
            recorder = Recorder(app)
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            server = _Server(uvicorn.Config(recorder, log_level="warning", lifespan="off"))
            task = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                await asyncio.sleep(0.01)
        except BaseException as exc:
            found["error"] = exc
            ready.set()
            raise
        stop = asyncio.Event()
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        loop = asyncio.get_running_loop()
        found["facades"] = Facades(base, tokens, people, sources, chain, loop, recorder)
        found["stop"] = stop
        ready.set()
        await stop.wait()
        server.should_exit = True
        await task
        chain.close()

    thread = threading.Thread(target=asyncio.run, args=(main(),), daemon=True)
    thread.start()
    if not ready.wait(60) or "error" in found:
        raise RuntimeError(f"the FHIR facades did not start: {found.get('error')!r}")
    served: Facades = found["facades"]
    try:
        yield served
    finally:
        served.loop.call_soon_threadsafe(found["stop"].set)
        thread.join(30)


def observation(
    patient: str, code: str = "8867-4", when: str = "2024-02-14T09:05:00Z", value: int = 72
) -> dict[str, Any]:
    """The example heart-rate Observation, about `patient` (a FHIR id), coded `code` in
    LOINC, taken `when`, of `value`."""
    resource: dict[str, Any] = json.loads((EXAMPLES / "observation-heart-rate.json").read_text())
    for element in ("id", "meta", "performer", "note", "issued"):
        del resource[element]
    resource["code"] = {"coding": [{"system": "http://loinc.org", "code": code}]}
    resource["subject"] = {"reference": f"Patient/{patient}"}
    resource["effectiveDateTime"] = when
    resource["valueQuantity"]["value"] = value
    return resource
