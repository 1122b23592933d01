"""The routers are module-level: each app answers from the node it was created over,
however many apps share the process."""

from __future__ import annotations

from medchain.offchain import cid_for
from medchain.types import encode
from tests.api.harness import FakeNode, api_client, make_chain, registered_gateway, upload_headers


def test_two_apps_answer_each_from_its_own_node() -> None:
    first, second = make_chain(), make_chain(min_fee=7)
    first_api, second_api = api_client(FakeNode(first)), api_client(FakeNode(second))
    for chain, api in ((first, first_api), (second, second_api)):
        genesis = api.get("/v1/genesis").json()
        assert genesis["params"]["min_fee"] == chain.genesis.params.min_fee
        validator = chain.validator.address_text
        assert api.get(f"/v1/accounts/{validator}").status_code == 200
        status = api.get("/v1/status").json()
        assert status["node_key"] == chain.validator.public_key.hex()


def test_the_per_blob_limit_is_the_apps_own() -> None:
    """Two apps in one process with different limits each apply their own to the same
    signed batch."""
    chain = make_chain()
    gateway = registered_gateway(chain)
    body = encode((b"x" * 1_500,), tuple[bytes, ...])
    small = api_client(FakeNode(chain), max_blob_bytes=1_000, max_blob_batch_bytes=20_000)
    large = api_client(FakeNode(chain), max_blob_bytes=2_000, max_blob_batch_bytes=20_000)
    headers = upload_headers(gateway, chain.genesis.chain_id, body)
    refused = small.post("/v1/blobs/batch", content=body, headers=headers)
    assert refused.status_code == 413 and refused.json()["error"]["code"] == "blob_too_large"
    stored = large.post("/v1/blobs/batch", content=body, headers=headers)
    assert stored.status_code == 200, stored.text
    assert stored.json() == {"cids": [cid_for(b"x" * 1_500)]}
