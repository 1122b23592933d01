"""Each node's usage per phase: sampled from a real process (CPU, peak memory) and from
its /metrics text (traffic, made up here), the phase's figures the differences, the
blocks it proposed counted in the phase they were seen in."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from medchain.bench._node_usage import (
    TRAFFIC,
    NodeSample,
    PhaseSampler,
    SampledNode,
    metric_value,
    most_proposing,
    phase_usage,
    sample_node,
)


@pytest.fixture
def process() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


class FakeMetrics:
    """A node's /metrics whose traffic counters grow by `step` bytes each read."""

    def __init__(self, step: int) -> None:
        self.step, self.reads = step, 0

    async def __call__(self, url: str) -> str:
        assert url == "http://node0"
        self.reads += 1
        lines = []
        for n, name in enumerate(TRAFFIC.values()):
            family = name.removesuffix("_total")
            value = self.reads * self.step * (n + 1)
            lines += [f"# TYPE {family} counter", f"{name} {value:e}"]
        return "\n".join(lines) + "\n"


def test_a_phase_is_the_difference_of_its_samples() -> None:
    traffic = dict.fromkeys(TRAFFIC, 0)
    before = NodeSample(10.0, 3.0, 50_000_000, traffic)
    after = NodeSample(
        14.0,
        5.0,
        80_000_000,
        {
            "p2p_sent": 4_000_000,
            "p2p_received": 3_000_000,
            "api_sent": 2_000_000,
            "api_received": 1_000_000,
        },
    )
    phase = phase_usage("transactions", before, after, 7)
    assert (phase.wall_s, phase.cpu_s, phase.cpu_share) == (4.0, 2.0, 0.5)
    assert phase.peak_rss_mb == 80.0  # the peak so far, not a difference
    assert (phase.p2p_sent_mb, phase.p2p_received_mb) == (4.0, 3.0)
    assert (phase.api_sent_mb, phase.api_received_mb) == (2.0, 1.0)
    assert phase.blocks_proposed == 7


def test_a_sample_reads_the_process_and_its_counters(process: subprocess.Popen[bytes]) -> None:
    node = SampledNode("node0", process.pid, "http://node0", "mc1node0")
    sample = asyncio.run(sample_node(node, FakeMetrics(1_000)))
    assert sample.cpu_s >= 0 and sample.peak_rss_bytes > 1_000_000  # an interpreter
    assert sample.traffic == {
        "p2p_sent": 1_000,
        "p2p_received": 2_000,
        "api_sent": 3_000,
        "api_received": 4_000,
    }


def test_a_node_gone_is_an_error(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()
    node = SampledNode("node0", process.pid, "http://node0", "mc1node0")
    with pytest.raises(RuntimeError, match="node0"):
        asyncio.run(sample_node(node, FakeMetrics(1)))


def test_the_sampler_reports_each_phase_and_marks_the_top_proposer(
    process: subprocess.Popen[bytes],
) -> None:
    node = SampledNode("node0", process.pid, "http://node0", "mc1node0")
    metrics = FakeMetrics(1_000_000)
    sampler = PhaseSampler([node], metrics)
    times: list[float] = []

    async def run() -> None:
        for phase in ("transactions", "record upload"):
            async with sampler.phase(phase):
                times.append(time.monotonic())

    asyncio.run(run())
    proposals = [(times[0], "mc1node0"), (times[0], "mc1other"), (times[1], "mc1node0")]
    proposals.append((times[1] + 3600, "mc1node0"))  # after the last phase: not counted
    [usage] = sampler.usage(proposals)
    assert metrics.reads == 4  # each phase's start and end
    assert (usage.node, usage.pid, usage.address) == ("node0", process.pid, "mc1node0")
    assert [p.phase for p in usage.phases] == ["transactions", "record upload"]
    assert [p.blocks_proposed for p in usage.phases] == [1, 1]
    assert [p.p2p_sent_mb for p in usage.phases] == [1.0, 1.0]  # one step a phase
    assert [p.api_received_mb for p in usage.phases] == [4.0, 4.0]
    assert usage.most_blocks


def test_the_top_proposer_is_named_only_when_alone_at_the_top() -> None:
    assert most_proposing({"a": 3, "b": 9, "c": 1}) == "b"
    assert most_proposing({"a": 5, "b": 5, "c": 1}) is None
    assert most_proposing({"a": 0, "b": 0}) is None
    assert most_proposing({}) is None


def test_a_metric_is_read_from_prometheus_text() -> None:
    text = "# TYPE medchain_api_sent_bytes counter\nmedchain_api_sent_bytes_total 1.5e+06\n"
    assert metric_value(text, "medchain_api_sent_bytes_total") == 1_500_000
    assert metric_value(text, "medchain_api_received_bytes_total") is None
