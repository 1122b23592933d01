"""The explorer's mempool page: the transactions a node holds that no block has
committed yet, as GET /v1/mempool serves them (no arguments: those are decoded on the
block's page once it commits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

MEMPOOL_SHOWN = 100


class MempoolChain(Protocol):
    def mempool(self, limit: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PendingRow:
    tx_hash: str
    sender: str
    method: str
    nonce: int
    size: int


@dataclass(frozen=True)
class MempoolView:
    count: int
    bytes: int
    rows: tuple[PendingRow, ...]
    """The oldest `MEMPOOL_SHOWN` of them."""


def mempool_view(chain: MempoolChain, limit: int = MEMPOOL_SHOWN) -> MempoolView:
    body = chain.mempool(limit)
    rows = tuple(
        PendingRow(str(t["tx_hash"]), str(t["sender"]), str(t["method"]), int(t["nonce"]),
                   int(t["size"]))
        for t in body.get("txs") or ()
    )  # fmt: skip
    return MempoolView(int(body.get("count", 0)), int(body.get("bytes", 0)), rows)
