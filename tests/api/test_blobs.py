"""POST /v1/blobs/batch: many blobs in one request, each stored as PUT /v1/blobs stores
it; the body is the canonical encoding of tuple[bytes, ...]; limits on each blob, on
the number of blobs and on the body are 413s that say to split, bad bodies 400s."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest

from medchain.api import DEFAULT_MAX_BLOB_BATCH_BYTES, MAX_BLOB_BATCH_BLOBS
from medchain.node import LocalChain
from medchain.offchain import DEFAULT_MAX_BLOB_BYTES, MemoryBlobStore, cid_for
from medchain.types import encode
from tests.api.harness import FakeNode, api_client, make_chain


def _batch(blobs: list[bytes]) -> bytes:
    return encode(blobs, tuple[bytes, ...])


def _post(api: httpx.Client, body: bytes) -> httpx.Response:
    headers = {"content-type": "application/octet-stream"}
    return api.post("/v1/blobs/batch", content=body, headers=headers)


def _ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code, error
    message: str = error["message"]
    return message


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


def test_a_batch_is_stored_and_answered_with_its_cids_in_order(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain))
    chain.blobs.put(b"stored before")
    blobs = [b"bundle 1", b"", b"stored before", b"bundle 1", os.urandom(70_000)]
    assert _ok(_post(api, _batch(blobs))) == {"cids": [cid_for(b) for b in blobs]}
    for blob in blobs:
        fetched = api.get(f"/v1/blobs/{cid_for(blob)}")
        assert fetched.status_code == 200 and fetched.content == blob
    assert _ok(_post(api, _batch(blobs)))["cids"] == [cid_for(b) for b in blobs]  # again
    assert _ok(_post(api, _batch([]))) == {"cids": []}


def test_each_blob_is_stored_as_put_stores_it(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain))
    _ok(_post(api, _batch([b"sealed"])))
    put = api.put("/v1/blobs", content=b"sealed")
    assert put.status_code == 200 and put.json() == {"cid": cid_for(b"sealed")}  # already there


def test_each_blob_is_bounded_by_the_per_blob_limit(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain), max_blob_bytes=1_000)
    assert _ok(_post(api, _batch([b"x" * 1_000, b"y"])))["cids"][1] == cid_for(b"y")
    message = _error(_post(api, _batch([b"z", b"x" * 1_001])), 413, "blob_too_large")
    assert "blob 1 of the batch is 1,001 bytes" in message and "limit of 1,000" in message
    assert not chain.blobs.has(cid_for(b"z"))  # a refused batch stores nothing


def test_the_stores_own_limit_still_applies(chain: LocalChain) -> None:
    node = FakeNode(chain)
    node.local.blobs = MemoryBlobStore(max_blob_bytes=10)  # smaller than the API's
    api = api_client(node)
    message = _error(_post(api, _batch([b"ok", b"x" * 11])), 413, "blob_too_large")
    assert "blob 1 of the batch" in message and not node.blobs.has(cid_for(b"ok"))


def test_the_body_is_bounded_and_the_message_says_to_split(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain), max_blob_batch_bytes=2_000)
    _ok(_post(api, _batch([b"x" * 900, b"y" * 900])))
    message = _error(_post(api, _batch([b"x" * 1_000, b"y" * 1_000])), 413, "body_too_large")
    assert "2,000 bytes" in message and "split a batch" in message
    assert not chain.blobs.has(cid_for(b"x" * 1_000))
    # The batch limit is the batch's own: PUT keeps the per-blob limit.
    assert api.put("/v1/blobs", content=b"z" * 3_000).status_code == 201


def test_the_default_limits() -> None:
    assert DEFAULT_MAX_BLOB_BATCH_BYTES == 16 * 1024 * 1024 == DEFAULT_MAX_BLOB_BYTES
    assert MAX_BLOB_BATCH_BLOBS == 1_000


def test_at_most_a_thousand_blobs(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain))
    many = [i.to_bytes(2, "big") for i in range(MAX_BLOB_BATCH_BLOBS + 1)]
    assert len(_ok(_post(api, _batch(many[:-1])))["cids"]) == MAX_BLOB_BATCH_BLOBS
    message = _error(_post(api, _batch(many)), 413, "too_many_blobs")
    assert "1,001 blobs" in message and "limit of 1,000" in message and "split" in message
    assert not chain.blobs.has(cid_for(many[-1]))


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not rlp at all",
        encode(b"one blob", bytes),  # a string, not a list
        b"\xc3\x82ab\xc0",  # a list inside the list
        _batch([b"a"]) + b"\x00",  # trailing bytes
    ],
)
def test_a_body_that_is_not_a_list_of_blobs_is_400(chain: LocalChain, body: bytes) -> None:
    api = api_client(FakeNode(chain))
    message = _error(_post(api, body), 400, "malformed_batch")
    assert "tuple[bytes, ...]" in message


def test_documented_as_binary(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain))
    operation = _ok(api.get("/openapi.json"))["paths"]["/v1/blobs/batch"]["post"]
    assert operation["tags"] == ["blobs"]
    assert "application/octet-stream" in operation["requestBody"]["content"]
    assert "BlobsStoredModel" in str(operation["responses"]["200"])
