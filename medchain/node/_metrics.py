"""The node's Prometheus instruments, on a registry of its own (one per node, so
several nodes in one test process never share counters)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class _StatsCollector(Collector):
    """Counters a component keeps as plain ints (the transport's, the engine's), read
    when /metrics is scraped: their hot paths stay free of metric calls."""

    def __init__(
        self, prefix: str, what: str, read: Callable[[], object], fields: Sequence[str]
    ) -> None:
        self._prefix, self._what, self._read, self._fields = prefix, what, read, tuple(fields)

    def collect(self) -> Iterator[Metric]:
        stats = self._read()
        for name in self._fields:
            yield CounterMetricFamily(
                f"{self._prefix}_{name}",
                f"{self._what}: {name.replace('_', ' ')}, since start",
                value=getattr(stats, name),
            )


class _LabelledCollector(Collector):
    """One counter family from a component's `{label value: count}` dict, read when
    /metrics is scraped."""

    def __init__(
        self, name: str, what: str, label: str, read: Callable[[], Mapping[str, int]]
    ) -> None:
        self._name, self._what, self._label, self._read = name, what, label, read

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self._name, self._what, labels=[self._label])
        for value, count in sorted(self._read().items()):
            family.add_metric([value], count)
        yield family


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
        self.unknown_channel_frames = Counter(
            "medchain_p2p_unknown_channel_frames",
            "Frames from peers on a channel this node does not speak (dropped)",
            registry=r,
        )
        self.synced_blocks = Gauge(
            "medchain_synced_blocks", "Blocks fetched from peers to catch up", registry=r
        )
        self.syncing = Gauge("medchain_syncing", "1 while catching up from peers", registry=r)
        self.verification_backlog = Gauge(
            "medchain_verification_backlog",
            "Signature checks queued for the verifier's workers, in Ed25519-check units",
            registry=r,
        )
        self.state_cache_bytes = Gauge(
            "medchain_state_cache_bytes",
            "Memory the state's read cache holds (estimated; bounded by state.cache_mb)",
            registry=r,
        )
        self._add_blob_metrics()

    def _add_blob_metrics(self) -> None:
        """Record bodies between nodes (node/_blobs.py, P2P channel 3)."""
        r = self.registry
        self.blobs_served = Counter(
            "medchain_blobs_served", "Blobs sent to peers that asked for them", registry=r
        )
        self.blob_bytes_served = Counter(
            "medchain_blob_bytes_served", "Bytes of the blobs sent to peers", registry=r
        )
        self.blob_requests_declined = Counter(
            "medchain_blob_requests_declined",
            "Peer requests for a blob answered without it (missing, damaged, busy, ...)",
            ["reason"],
            registry=r,
        )
        self.blobs_fetched = Counter(
            "medchain_blobs_fetched",
            "Blobs fetched from peers, checked against their CID and stored",
            registry=r,
        )
        self.blob_bytes_fetched = Counter(
            "medchain_blob_bytes_fetched", "Bytes of the blobs fetched from peers", registry=r
        )
        self.blobs_refused = Counter(
            "medchain_blobs_refused",
            "Peer answers refused: bytes not matching the CID, oversized, malformed, unasked",
            ["reason"],
            registry=r,
        )
        self.blob_fetch_failures = Counter(
            "medchain_blob_fetch_failures",
            "Blobs missing here that no peer could provide",
            registry=r,
        )

    def export_stats(
        self, prefix: str, what: str, read: Callable[[], object], fields: Sequence[str]
    ) -> None:
        """Serve the int `fields` of the object `read()` returns as `{prefix}_{field}_total`."""
        self.registry.register(_StatsCollector(prefix, what, read, fields))

    def export_counts(
        self, name: str, what: str, label: str, read: Callable[[], Mapping[str, int]]
    ) -> None:
        """Serve the dict `read()` returns as `{name}_total{label="key"}` counters."""
        self.registry.register(_LabelledCollector(name, what, label, read))
