"""Work limits at the API: a client over its verification budget is answered 429 with
Retry-After before its body is read; the node is told which client each submission
comes from (its budget, and its limit of anonymous transactions a request, are the
node's: tests/node/test_admission.py)."""

from __future__ import annotations

import pytest

from medchain.api import _limits
from medchain.api._errors import medchain_error_response, status_for
from medchain.api._limits import client_of
from medchain.app import RegisterArgs, Role
from medchain.crypto import AccountKeys
from medchain.node import RateLimited, TooManyAnonymous, VerifierBusy
from tests.api.harness import FakeNode, api_client, make_chain, signed


def _register() -> str:
    keys = AccountKeys.generate()
    args = RegisterArgs(Role.PATIENT, "", keys.encryption_public_key)
    return signed(keys, 0, "registry.register", args).encoded.hex()


@pytest.fixture
def node() -> FakeNode:
    return FakeNode(make_chain())


def test_a_client_over_budget_is_refused_before_its_body_is_read(
    node: FakeNode, monkeypatch: pytest.MonkeyPatch
) -> None:
    held: list[float] = []

    async def hold(seconds: float) -> None:
        held.append(seconds)

    monkeypatch.setattr(_limits, "hold", hold)
    api = api_client(node)
    node.waits["127.0.0.1"] = 3.5
    for path, body in [
        ("/v1/txs", {"tx": _register()}),
        ("/v1/txs/batch", {"txs": [_register()]}),
        ("/v1/records", {"tx": _register(), "ciphertext": "00"}),
    ]:
        response = api.post(path, json=body)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "rate_limited"
        assert "127.0.0.1" in response.json()["error"]["message"]
        assert response.headers["retry-after"] == "3"
        assert response.headers["connection"] == "close"
    assert node.clients == []  # nothing reached the node
    assert held == [1.0, 1.0, 1.0]  # each answer held (a second at most) before it went
    monkeypatch.setattr(_limits, "MAX_HELD", 0)  # as if 256 were held already
    response = api.post("/v1/txs", json={"tx": _register()})
    assert response.status_code == 429 and response.headers["retry-after"] == "4"
    assert len(held) == 3  # answered at once
    assert api.get("/v1/status").status_code == 200  # reading is not limited
    del node.waits["127.0.0.1"]
    assert api.post("/v1/txs", json={"tx": _register()}).status_code == 202
    assert node.clients == ["127.0.0.1"]


def test_budget_refusals_have_their_status_and_retry_after() -> None:
    limited = RateLimited("wait", 7)
    assert status_for(limited) == 429
    assert medchain_error_response(limited).headers["retry-after"] == "7"
    busy = VerifierBusy("busy")
    assert status_for(busy) == 503
    assert medchain_error_response(busy).headers["retry-after"] == "1"
    assert status_for(TooManyAnonymous("16 at most")) == 400


def test_the_client_is_the_peer_address() -> None:
    assert client_of({"client": ("203.0.113.5", 4242)}) == "203.0.113.5"
    assert client_of({"client": None}) == "unknown"


def test_each_submission_of_a_batch_names_its_client(node: FakeNode) -> None:
    api_client(node).post("/v1/txs/batch", json={"txs": [_register(), _register()]})
    assert node.clients == ["127.0.0.1", "127.0.0.1"]  # the test transport's address
