"""Body limits on the declared and the received size, and request metrics."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
from starlette.types import Message

from medchain.api import create_api
from medchain.types import encode
from tests.api.harness import (
    FakeNode,
    api_client,
    make_chain,
    registered_gateway,
    served,
    upload_headers,
)


def _asgi(
    headers: list[tuple[bytes, bytes]], chunks: list[bytes], method: str = "POST"
) -> tuple[int, dict[str, Any]]:
    """Call the app as a server would, the body arriving in `chunks`."""
    app = create_api(FakeNode(make_chain()), max_body_bytes=100)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": "/v1/txs",
        "raw_path": b"/v1/txs",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"content-type", b"application/json"), *headers],
        "server": ("node", 80),
        "client": ("127.0.0.1", 1),
    }
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return pending.pop(0) if pending else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(body)


def test_declared_size_over_the_limit_is_refused_unread() -> None:
    status, body = _asgi([(b"content-length", b"101")], [b"x" * 101])
    assert status == 413 and body["error"]["code"] == "body_too_large"
    assert "100 bytes" in body["error"]["message"]


def test_received_size_over_the_limit_is_refused() -> None:
    chunks = [b'{"tx": "', b"0" * 60, b"0" * 60, b'"}']  # no Content-Length: streamed
    status, body = _asgi([], chunks)
    assert status == 413 and body["error"]["code"] == "body_too_large"
    status, body = _asgi([(b"content-length", b"10")], chunks)  # a lying header
    assert status == 413


def test_malformed_content_length() -> None:
    for value in (b"ten", b"-1", b"\xc2\xb2", b"9" * 30):
        status, body = _asgi([(b"content-length", value)], [b"{}"])
        assert status == 400 and "Content-Length" in body["error"]["message"], value


def test_within_the_limit_passes() -> None:
    status, body = _asgi([], [b'{"tx": ', b'"zz"}'])
    assert status == 400 and body["error"]["code"] == "invalid_hex"


def test_body_uploads_have_their_own_limits() -> None:
    chain = make_chain()
    gateway = registered_gateway(chain)
    api = api_client(
        FakeNode(chain), max_body_bytes=100, max_blob_bytes=1_000, max_blob_batch_bytes=2_000
    )
    assert api.post("/v1/search", content=b"x" * 500).status_code == 413
    # a record's body travels as hex beside its transaction: twice the blob limit and more
    big = json.dumps({"tx": "00", "ciphertext": "ab" * 1_000}).encode()
    assert api.post("/v1/records", content=big).status_code == 400  # read, then refused
    too_big = json.dumps({"tx": "00", "ciphertext": "ab" * 100_000}).encode()
    assert api.post("/v1/records", content=too_big).status_code == 413
    batch = encode([b"x" * 900, b"y" * 900], tuple[bytes, ...])
    headers = upload_headers(gateway, chain.chain_id, batch)
    assert api.post("/v1/blobs/batch", content=batch, headers=headers).status_code == 200
    batch = encode([b"x" * 1_000, b"y" * 1_000], tuple[bytes, ...])
    headers = upload_headers(gateway, chain.chain_id, batch)
    assert api.post("/v1/blobs/batch", content=batch, headers=headers).status_code == 413


def test_streamed_upload_over_a_real_socket() -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"y" * 1_000_000

    with served(lambda: FakeNode(make_chain())) as node:
        url = f"{node.url}/v1/blobs/batch"
        response = httpx.post(url, content=chunks(), timeout=30)
        assert response.status_code == 413, response.text
        assert response.json()["error"]["code"] == "body_too_large"
        small = httpx.post(url, content=iter([b"a", b"b"]), timeout=30)
        assert small.status_code == 401  # read whole, then refused: it is not signed


def test_metrics_label_routes_by_template() -> None:
    api = api_client(FakeNode(make_chain()))
    api.get("/v1/records/" + "ab" * 16)
    api.get("/no/such/thing")
    text = api.get("/metrics").text
    assert 'route="/v1/records/{record_id}",status="404"' in text
    assert 'route="unmatched",status="404"' in text
    assert "ab" * 16 not in text


def test_metrics_count_the_body_bytes_each_way() -> None:
    node = FakeNode(make_chain())
    api = api_client(node)

    def total(direction: str) -> float:
        value = node.metrics_registry.get_sample_value(f"medchain_api_{direction}_bytes_total")
        assert value is not None, direction
        return value

    received, sent = total("received"), total("sent")
    body = b'{"tx": "' + b"zz" * 300 + b'"}'
    refused = api.post("/v1/txs", content=body)  # read whole, then refused with a JSON body
    assert refused.status_code == 400
    assert total("received") - received == len(body)
    assert total("sent") - sent == len(refused.content)
    status = api.get("/v1/status")
    assert status.status_code == 200
    assert total("received") - received == len(body)  # a GET has no body
    assert total("sent") - sent == len(refused.content) + len(status.content)
