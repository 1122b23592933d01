"""What the HTTP API needs from a node. The networked node implements it; tests
implement it over an in-process chain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import prometheus_client

from medchain.node import AnchoringStatus, Bodies, ChainQueries, DisclosureLog, NodeStatus
from medchain.offchain import BlobStore
from medchain.types import Genesis, MedchainError, Receipt, Tx


@runtime_checkable
class FetchingBlobStore(BlobStore, Protocol):
    """A blob store that can find blobs it does not hold: the networked node's asks its
    peers. GET and HEAD /v1/blobs/{cid} use `fetch` when `NodeService.blobs` has it."""

    async def fetch(self, cid: str) -> bytes:
        """The bytes named by `cid`, from this store or from elsewhere (checked against
        the CID, then kept); BlobNotFound when nobody has them."""
        ...


class NodeService(Protocol):
    """Everything but `blobs` is used from the event loop thread only, because the
    stores are single-thread SQLite. Blob reads and writes (up to the blob size limit,
    hashing and fsync included) run in a worker thread so they never stall consensus,
    but for the networked node's reads of small local files (`INLINE_READ_BYTES`): the
    blob store must be thread-safe (LocalBlobStore and MemoryBlobStore are)."""

    @property
    def genesis(self) -> Genesis: ...

    @property
    def chain(self) -> ChainQueries:
        """Committed state."""
        ...

    @property
    def blobs(self) -> BlobStore:
        """For reads; the API stores bodies only through `bodies`."""
        ...

    @property
    def bodies(self) -> Bodies:
        """Authenticated uploads into the node's own store, their quota and collector."""
        ...

    @property
    def disclosures(self) -> DisclosureLog:
        """Where each authenticated read the API serves is logged (a read the log
        refuses is not served)."""
        ...

    @property
    def metrics_registry(self) -> prometheus_client.CollectorRegistry:
        """Served at /metrics; the API adds its request counters to it."""
        ...

    async def submit(self, tx: Tx, client: str | None = None) -> bool:
        """Admit `tx` to the mempool and gossip it. False if it is already pending;
        raises a MedchainError (TxRejected subclasses, PendingFull when full,
        RateLimited and VerifierBusy as for `submit_batch`)."""
        ...

    async def submit_batch(
        self, txs: Sequence[Tx], client: str | None = None
    ) -> list[bool | MedchainError]:
        """Admit each of `txs` on its own: True, False (already pending) or its refusal.
        `client`, the caller's address, pays with its budget for the verification work
        of transactions not admitted; RateLimited (429) while that is overdrawn,
        VerifierBusy (503) while the node's verifier is behind, and nothing admitted."""
        ...

    def admission_wait_s(self, client: str) -> float:
        """Seconds until `client` may submit transactions again (0: now). Asked once
        per request that would admit transactions; a request told to wait is refused."""
        ...

    async def wait_committed(self, tx_hash: bytes, timeout_s: float) -> Receipt | None:
        """The receipt once `tx_hash` is committed; None after `timeout_s`."""
        ...

    def is_pending(self, tx_hash: bytes) -> bool: ...

    def pending_txs(self, limit: int) -> tuple[Tx, ...]:
        """The first `limit` transactions waiting in the mempool, in arrival order."""
        ...

    def status(self) -> NodeStatus: ...

    def anchoring_status(self) -> AnchoringStatus | None:
        """None when the node does not anchor (no `anchor` section in its config)."""
        ...
