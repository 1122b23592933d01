"""The explorer's mempool page (medchain.web._mempool): what waits for a block, read
from the node's GET /v1/mempool, oldest first."""

from __future__ import annotations

import asyncio

from medchain.app import RegisterArgs, Role
from medchain.client import HttpChain
from medchain.crypto import AccountKeys, format_address
from medchain.types import Tx, tx_id
from medchain.web._mempool import mempool_view
from tests.api.harness import signed
from tests.web.conftest import RunningApp, Ward


def _waiting(ward: Ward, count: int) -> list[tuple[AccountKeys, Tx]]:
    """`count` registrations the node holds without committing them."""
    node = ward.node.node
    node.auto_commit = False
    found = []
    for _ in range(count):
        keys = AccountKeys.generate()
        tx = signed(
            keys, 0, "registry.register", RegisterArgs(Role.PATIENT, "", keys.encryption_public_key)
        )
        assert asyncio.run_coroutine_threadsafe(node.submit(tx), ward.node.loop).result(30)
        found.append((keys, tx))
    return found


def test_the_view_lists_the_oldest_first_up_to_the_limit(ward: Ward) -> None:
    waiting = _waiting(ward, 3)
    with HttpChain(ward.node.url) as chain:
        view = mempool_view(chain, limit=2)
    assert (view.count, view.bytes) == (3, sum(len(tx.encoded) for _, tx in waiting))
    assert [(r.tx_hash, r.sender, r.method, r.nonce) for r in view.rows] == [
        (tx_id(tx).hex(), format_address(k.address), "registry.register", 0)
        for k, tx in waiting[:2]
    ]


def test_the_page_lists_pending_transactions(ward: Ward, explorer: RunningApp) -> None:
    with explorer.browser() as client:
        empty = client.get("/mempool").text
        ((keys, tx),) = _waiting(ward, 1)
        page = client.get("/mempool").text
        home = client.get("/").text
    assert "Nothing is waiting." in empty
    assert f'<td class="addr">{tx_id(tx).hex()[:16]}…</td><td>registry.register</td>' in page
    assert format_address(keys.address) in page
    assert '<a href="/mempool">1 transactions</a>' in home
