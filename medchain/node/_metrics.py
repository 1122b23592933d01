"""The node's Prometheus instruments, on a registry of its own (one per node, so
several nodes in one test process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("medchain_height", "Latest committed height", registry=r)
        self.round = Gauge("medchain_round", "Round (view) of the height in progress", registry=r)
        self.round_changes = Counter(
            "medchain_round_changes", "Round (view) changes since start", registry=r
        )
        self.peers = Gauge("medchain_peers", "Connected peers", registry=r)
        self.mempool_txs = Gauge("medchain_mempool_txs", "Pending transactions", registry=r)
        self.mempool_bytes = Gauge(
            "medchain_mempool_bytes", "Encoded size of pending transactions", registry=r
        )
        self.txs_committed = Counter(
            "medchain_txs_committed", "Transactions in committed blocks", registry=r
        )
        self.blocks_committed = Counter(
            "medchain_blocks_committed", "Blocks committed (decided or synced)", registry=r
        )
        self.tx_rate = Gauge(
            "medchain_tx_per_second", "Committed transactions per second, last 10 s", registry=r
        )
        self.commit_latency = Histogram(
            "medchain_commit_latency_seconds",
            "From admission at this node to commit, for transactions submitted here",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.txs_rejected = Counter(
            "medchain_txs_rejected", "Transactions refused by the mempool", ["source"], registry=r
        )
        self.consensus_messages = Counter(
            "medchain_consensus_messages",
            "Consensus messages sent and received",
            ["direction"],
            registry=r,
        )
        self.double_sign_prevented = Counter(
            "medchain_double_sign_prevented",
            "Conflicting messages the consensus WAL replaced by what was signed first",
            registry=r,
        )
        self.synced_blocks = Gauge(
            "medchain_synced_blocks", "Blocks fetched from peers to catch up", registry=r
        )
        self.syncing = Gauge("medchain_syncing", "1 while catching up from peers", registry=r)
