"""The node's own routes (medchain.api._node): GET /v1/mempool lists what waits to be
committed, oldest first, without the transactions' arguments."""

from __future__ import annotations

from medchain.app import RegisterArgs, Role
from medchain.crypto import AccountKeys, format_address
from medchain.types import tx_id
from tests.api.conftest import World
from tests.api.harness import signed


def test_the_mempool_lists_pending_transactions_until_they_commit(world: World) -> None:
    assert world.api.get("/v1/mempool").json() == {"count": 0, "bytes": 0, "txs": []}
    world.node.auto_commit = False
    people = [AccountKeys.generate() for _ in range(3)]
    txs = [
        signed(k, 0, "registry.register", RegisterArgs(Role.PATIENT, "", k.encryption_public_key))
        for k in people
    ]
    for tx in txs:
        assert world.api.post("/v1/txs", json={"tx": tx.encoded.hex()}).status_code == 202
    body = world.api.get("/v1/mempool", params={"limit": 2}).json()
    assert (body["count"], body["bytes"]) == (3, sum(len(tx.encoded) for tx in txs))
    assert body["txs"] == [
        {
            "tx_hash": tx_id(tx).hex(),
            "sender": format_address(k.address),
            "method": "registry.register",
            "nonce": 0,
            "fee": tx.fee,
            "size": len(tx.encoded),
        }
        for k, tx in zip(people[:2], txs[:2], strict=True)
    ]
    world.node.commit()
    assert world.api.get("/v1/mempool").json()["count"] == 0


def test_the_limit_is_bounded(world: World) -> None:
    too_many = world.api.get("/v1/mempool", params={"limit": 501})
    assert too_many.status_code == 400 and "limit" in too_many.text
    assert world.api.get("/v1/mempool", params={"limit": -1}).status_code == 400
    assert world.api.get("/v1/mempool", params={"limit": 0}).json()["txs"] == []


def test_the_openapi_document_describes_it(world: World) -> None:
    schema = world.api.get("/openapi.json").json()
    operation = schema["paths"]["/v1/mempool"]["get"]
    assert operation["summary"] == "The transactions waiting in this node's mempool"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/MempoolModel"
    }
    pending = schema["components"]["schemas"]["PendingTxModel"]["properties"]
    assert set(pending) == {"tx_hash", "sender", "method", "nonce", "fee", "size"}
