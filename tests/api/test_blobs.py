"""The blob routes. POST /v1/blobs/batch is an edge gateway's bulk upload: signed by
its registered key over the chain, an expiry and the body, refused unsigned (401),
badly signed (401), expired (401), by anyone but an active gateway (403) and over the
gateway's quota (429), each counted in /metrics and storing nothing. A signed batch
is the canonical encoding of tuple[bytes, ...]; limits on each blob, on the number of
blobs and on the body are 413s that say to split, bad bodies 400s. Nobody can PUT."""

from __future__ import annotations

import dataclasses
import os
import time

import httpx
import pytest

from medchain.api import DEFAULT_MAX_BLOB_BATCH_BYTES, MAX_BLOB_BATCH_BLOBS
from medchain.app import RegisterGatewayArgs, RevokeGatewayArgs
from medchain.crypto import AccountKeys
from medchain.node import LocalChain
from medchain.offchain import DEFAULT_MAX_BLOB_BYTES, MemoryBlobStore, cid_for
from medchain.types import UPLOAD_EXPIRES_HEADER, UPLOAD_SIGNATURE_HEADER, encode
from tests.api.harness import (
    HOSPITAL,
    FakeNode,
    api_client,
    make_chain,
    ok,
    read_as,
    refused,
    registered_gateway,
    signed,
    upload_headers,
)


@dataclasses.dataclass
class Gateway:
    chain: LocalChain
    keys: AccountKeys

    def post(self, api: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
        signed_headers = upload_headers(self.keys, self.chain.chain_id, body)
        return api.post("/v1/blobs/batch", content=body, headers={**signed_headers, **headers})


def _batch(blobs: list[bytes]) -> bytes:
    return encode(blobs, tuple[bytes, ...])


def _refused(node: FakeNode, reason: str) -> float:
    value = node.registry.get_sample_value("medchain_uploads_refused_total", {"reason": reason})
    return value or 0.0


@pytest.fixture
def chain() -> LocalChain:
    return make_chain()


@pytest.fixture
def gateway(chain: LocalChain) -> Gateway:
    return Gateway(chain, registered_gateway(chain))


def test_a_batch_is_stored_and_answered_with_its_cids_in_order(
    chain: LocalChain, gateway: Gateway
) -> None:
    api = api_client(FakeNode(chain))
    chain.blobs.put(b"stored before")
    blobs = [b"bundle 1", b"", b"stored before", b"bundle 1", os.urandom(70_000)]
    assert ok(gateway.post(api, _batch(blobs))) == {"cids": [cid_for(b) for b in blobs]}
    for blob in blobs:  # stored; served to readers once a committed batch names them
        assert chain.blobs.get(cid_for(blob)) == blob
        assert api.head(f"/v1/blobs/{cid_for(blob)}").status_code == 200
    assert ok(gateway.post(api, _batch(blobs)))["cids"] == [cid_for(b) for b in blobs]  # again
    assert ok(gateway.post(api, _batch([]))) == {"cids": []}


def test_an_unsigned_batch_is_401_and_stores_nothing(chain: LocalChain) -> None:
    node = FakeNode(chain)
    api = api_client(node)
    body = _batch([b"junk"])
    response = api.post(
        "/v1/blobs/batch", content=body, headers={"content-type": "application/octet-stream"}
    )
    message = refused(response, 401, "upload_unsigned")
    assert "Medchain-Upload-Signature" in message and "POST /v1/records" in message
    assert not chain.blobs.has(cid_for(b"junk"))
    assert _refused(node, "unsigned") == 1


def test_a_bad_signature_is_401_and_stores_nothing(chain: LocalChain, gateway: Gateway) -> None:
    node = FakeNode(chain)
    api = api_client(node)
    body = _batch([b"bundle"])
    headers = upload_headers(gateway.keys, chain.chain_id, body)
    forged = {**headers, UPLOAD_SIGNATURE_HEADER: "00" * 64}
    response = api.post("/v1/blobs/batch", content=body, headers=forged)
    assert "does not match" in refused(response, 401, "upload_signature_invalid")
    # the signature covers the body: the same headers over other bytes are refused
    other = _batch([b"other bundle"])
    response = api.post("/v1/blobs/batch", content=other, headers=headers)
    refused(response, 401, "upload_signature_invalid")
    # ... and the chain: a signature for another chain is refused
    elsewhere = upload_headers(gateway.keys, "another-chain", body)
    refused(
        api.post("/v1/blobs/batch", content=body, headers=elsewhere),
        401,
        "upload_signature_invalid",
    )
    # ... and the expiry: it cannot be moved once signed
    later = {**headers, UPLOAD_EXPIRES_HEADER: str(int(headers[UPLOAD_EXPIRES_HEADER]) + 1)}
    refused(
        api.post("/v1/blobs/batch", content=body, headers=later), 401, "upload_signature_invalid"
    )
    for malformed in ({UPLOAD_SIGNATURE_HEADER: "zz"}, {UPLOAD_EXPIRES_HEADER: "soon"}):
        response = api.post("/v1/blobs/batch", content=body, headers={**headers, **malformed})
        assert "hex" in refused(response, 401, "upload_signature_invalid")
    assert not chain.blobs.has(cid_for(b"bundle")) and not chain.blobs.has(cid_for(b"other bundle"))
    assert _refused(node, "bad_signature") == 6


def test_an_expired_or_far_off_signature_is_401(chain: LocalChain, gateway: Gateway) -> None:
    node = FakeNode(chain)
    api = api_client(node)
    body = _batch([b"bundle"])
    now_ms = time.time_ns() // 1_000_000
    past = upload_headers(gateway.keys, chain.chain_id, body, expires_ms=now_ms - 1_000)
    message = refused(
        api.post("/v1/blobs/batch", content=body, headers=past), 401, "upload_expired"
    )
    assert "expired" in message and "clock" in message
    far = upload_headers(gateway.keys, chain.chain_id, body, expires_ms=now_ms + 3_600_000)
    message = refused(
        api.post("/v1/blobs/batch", content=body, headers=far), 401, "upload_expiry_too_far"
    )
    assert "10 minutes" in message
    assert not chain.blobs.has(cid_for(b"bundle"))
    assert _refused(node, "expired") == 2


def test_only_an_active_gateway_may_upload(chain: LocalChain) -> None:
    node = FakeNode(chain)
    api = api_client(node)
    body = _batch([b"bundle"])
    stranger = AccountKeys.generate()
    headers = upload_headers(stranger, chain.chain_id, body)
    message = refused(
        api.post("/v1/blobs/batch", content=body, headers=headers), 403, "not_a_gateway"
    )
    assert "is not a registered gateway" in message and stranger.address_text in message
    # a gateway its hospital revoked
    hospital, revoked = HOSPITAL.admin, AccountKeys.generate()
    nonce = chain.account(hospital.address).nonce
    gateway_args = RegisterGatewayArgs(revoked.address, "old edge")
    chain.submit(signed(hospital, nonce, "devices.register_gateway", gateway_args, chain.chain_id))
    assert ok(Gateway(chain, revoked).post(api, _batch([b"before"])))
    revoke = RevokeGatewayArgs(revoked.address)
    chain.submit(signed(hospital, nonce + 1, "devices.revoke_gateway", revoke, chain.chain_id))
    response = Gateway(chain, revoked).post(api, body)
    assert "is a revoked gateway" in refused(response, 403, "not_a_gateway")
    assert not chain.blobs.has(cid_for(b"bundle"))
    assert _refused(node, "not_a_gateway") == 2


def test_a_gateway_over_its_quota_is_429_until_its_batches_commit(
    chain: LocalChain, gateway: Gateway
) -> None:
    node = FakeNode(chain, quota_bytes=1_000)
    api = api_client(node)
    first, second = os.urandom(600), os.urandom(600)
    ok(gateway.post(api, _batch([first])))
    assert node.bodies.usage(gateway.keys.address_text) == 600
    message = refused(gateway.post(api, _batch([second])), 429, "upload_quota_exceeded")
    assert "600 bytes" in message and "quota of 1,000 bytes" in message
    assert "batches) to commit" in message
    assert not chain.blobs.has(cid_for(second))
    assert _refused(node, "over_quota") == 1
    # the same bytes again are not counted twice
    ok(gateway.post(api, _batch([first])))
    assert node.bodies.usage(gateway.keys.address_text) == 600


def test_each_blob_is_bounded_by_the_per_blob_limit(chain: LocalChain, gateway: Gateway) -> None:
    api = api_client(FakeNode(chain), max_blob_bytes=1_000)
    assert ok(gateway.post(api, _batch([b"x" * 1_000, b"y"])))["cids"][1] == cid_for(b"y")
    message = refused(gateway.post(api, _batch([b"z", b"x" * 1_001])), 413, "blob_too_large")
    assert "blob 1 of the batch is 1,001 bytes" in message and "limit of 1,000" in message
    assert not chain.blobs.has(cid_for(b"z"))  # a refused batch stores nothing


def test_the_stores_own_limit_still_applies(chain: LocalChain, gateway: Gateway) -> None:
    chain.blobs = MemoryBlobStore(max_blob_bytes=10)  # smaller than the API's
    node = FakeNode(chain)
    api = api_client(node)
    message = refused(gateway.post(api, _batch([b"ok", b"x" * 11])), 413, "blob_too_large")
    assert "blob 1 of the batch" in message and not node.blobs.has(cid_for(b"ok"))


def test_the_body_is_bounded_and_the_message_says_to_split(
    chain: LocalChain, gateway: Gateway
) -> None:
    api = api_client(FakeNode(chain), max_blob_batch_bytes=2_000, max_blob_bytes=1_000)
    ok(gateway.post(api, _batch([b"x" * 900, b"y" * 900])))
    message = refused(
        gateway.post(api, _batch([b"x" * 1_000, b"y" * 1_000])), 413, "body_too_large"
    )
    assert "2,000 bytes" in message and "split a batch" in message
    assert not chain.blobs.has(cid_for(b"x" * 1_000))


def test_a_lone_blob_up_to_the_per_blob_limit_fits_whatever_the_batch_limit(
    chain: LocalChain, gateway: Gateway
) -> None:
    api = api_client(FakeNode(chain), max_blob_batch_bytes=2_000, max_blob_bytes=5_000)
    assert ok(gateway.post(api, _batch([b"z" * 5_000])))["cids"] == [cid_for(b"z" * 5_000)]


def test_the_default_limits() -> None:
    assert DEFAULT_MAX_BLOB_BATCH_BYTES == 16 * 1024 * 1024 == DEFAULT_MAX_BLOB_BYTES
    assert MAX_BLOB_BATCH_BLOBS == 1_000


def test_at_most_a_thousand_blobs(chain: LocalChain, gateway: Gateway) -> None:
    api = api_client(FakeNode(chain))
    many = [i.to_bytes(2, "big") for i in range(MAX_BLOB_BATCH_BLOBS + 1)]
    assert len(ok(gateway.post(api, _batch(many[:-1])))["cids"]) == MAX_BLOB_BATCH_BLOBS
    message = refused(gateway.post(api, _batch(many)), 413, "too_many_blobs")
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
def test_a_signed_body_that_is_not_a_list_of_blobs_is_400(
    chain: LocalChain, gateway: Gateway, body: bytes
) -> None:
    node = FakeNode(chain)
    message = refused(gateway.post(api_client(node), body), 400, "malformed_batch")
    assert "tuple[bytes, ...]" in message
    assert _refused(node, "malformed") == 1


def test_nobody_can_put_a_blob(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain))
    response = api.put("/v1/blobs", content=b"sealed")
    assert response.status_code in (404, 405), response.text
    assert not chain.blobs.has(cid_for(b"sealed"))


def test_a_blob_is_served_only_to_a_signed_read_naming_what_holds_it(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain), max_blob_bytes=1_000)
    cid = chain.blobs.put(b"ciphertext")
    assert "Medchain-Read" in refused(api.get(f"/v1/blobs/{cid}"), 401, "read_unsigned")
    reader = read_as(AccountKeys.generate())
    message = refused(api.get(f"/v1/blobs/{cid}", auth=reader), 400, "blob_owner_required")
    assert "?record=ID&version=N" in message
    assert api.head(f"/v1/blobs/{cid}").status_code == 200  # whether it is held: public
    missing = cid_for(b"other")
    head = api.head(f"/v1/blobs/{missing}")
    assert head.status_code == 404 and head.content == b""
    invalid = api.get("/v1/blobs/QmNotOurs", auth=reader)
    assert "bafkrei" in refused(invalid, 400, "invalid_cid")
    assert api.head("/v1/blobs/QmNotOurs").status_code == 400


def test_documented_as_signed_binary(chain: LocalChain) -> None:
    api = api_client(FakeNode(chain))
    paths = ok(api.get("/openapi.json"))["paths"]
    operation = paths["/v1/blobs/batch"]["post"]
    assert operation["tags"] == ["blobs"]
    assert "application/octet-stream" in operation["requestBody"]["content"]
    assert "BlobsStoredModel" in str(operation["responses"]["200"])
    assert {"401", "403", "429"} <= set(operation["responses"])
    headers = {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert headers == {"Medchain-Uploader", "Medchain-Upload-Expires", "Medchain-Upload-Signature"}
    assert "put" not in paths.get("/v1/blobs", {})
