"""Run metrics: safety violations, commit latency percentiles, per-block and
per-second traffic, and the summary row."""

from __future__ import annotations

import pytest

from medchain.sim import (
    HeightRecord,
    KindTraffic,
    NodeCommit,
    NodeInfo,
    SimResult,
    StopReason,
    percentile,
)

A, B = b"\xaa" * 32, b"\xbb" * 32


def result(heights: tuple[HeightRecord, ...], **changes: object) -> SimResult:
    nodes = tuple(NodeInfo(i, f"n{i}", bytes([i]) * 32, honest=i != 3) for i in range(4))
    base = SimResult(
        label="toy",
        seed=1,
        nodes=nodes,
        start_ms=0,
        end_ms=2_000,
        events=100,
        stop_reason=StopReason.UNTIL,
        heights=heights,
        traffic=(KindTraffic("commit", 30, 3_000), KindTraffic("vote", 70, 7_000)),
        delivered=90,
        drops={"lost": 10},
        round_timeouts=1,
        evidence=(),
        engine_stats=({}, {}, {}, {}),
        trace_hash=b"",
    )
    return base if not changes else SimResult(**{**_fields(base), **changes})  # type: ignore[arg-type]


def _fields(r: SimResult) -> dict[str, object]:
    return {name: getattr(r, name) for name in SimResult.__dataclass_fields__}


def height(h: int, time: int, *commits: tuple[int, int, bytes], rc: int = 0) -> HeightRecord:
    return HeightRecord(
        height=h,
        header_time_ms=time,
        first_commit_ms=min((t for n, t, _ in commits if n != 3), default=None),
        round_changes=rc,
        commits=tuple(NodeCommit(n, t, digest, rc) for n, t, digest in commits),
        messages=50,
        bytes=5_000,
    )


def test_safety_violations_are_heights_where_honest_nodes_disagree() -> None:
    r = result(
        (
            height(1, 0, (0, 10, A), (1, 12, A), (2, 15, A), (3, 11, B)),  # only faulty 3 differs
            height(2, 100, (0, 110, A), (1, 112, B)),  # planted
            height(3, 200, (0, 210, A), (0, 260, B)),  # one node, twice
            height(4, 300, (3, 310, A)),  # only a faulty node committed
        )
    )
    assert r.safety_violations() == (2, 3)
    assert r.hashes(2) == {0: A, 1: B}
    assert r.hashes(3) == {0: A}
    assert r.blocks == 3
    assert [h.height for h in r.committed()] == [1, 2, 3]


def test_commit_latency_counts_each_honest_node_once_per_height() -> None:
    r = result(
        (
            height(1, 0, (0, 10, A), (1, 20, A), (2, 30, A), (3, 1, A), (0, 900, A)),
            height(2, 100, (0, 140, A), (1, 150, A), (2, 400, A)),
        )
    )
    assert r.commit_latencies_ms() == [10, 20, 30, 40, 50, 300]
    assert r.latency_percentile(50) == 30
    assert r.latency_percentile(99) == 300


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([7], 99) == 7
    assert percentile(list(range(1, 101)), 50) == 50
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile(list(range(1, 11)), 0) == 1
    assert percentile(list(range(1, 11)), 100) == 10


def test_summary_figures() -> None:
    r = result(
        (
            height(1, 0, (0, 500, A), (1, 520, A)),
            height(2, 500, (0, 1_000, A), (1, 1_020, A), rc=2),
        )
    )
    s = r.summary()
    assert (s.engine, s.nodes, s.blocks) == ("toy", 4, 2)
    assert s.mean_block_time_ms == 500
    assert s.messages_per_block == 50
    assert s.kb_per_block == pytest.approx(5.0)
    assert s.kb_per_s == pytest.approx(5.0)
    assert s.messages_per_s == 50
    assert s.view_changes == 2
    assert (s.latency_p50_ms, s.latency_p99_ms) == (500, 520)
    assert r.height_over_time() == [(500, 1), (1_000, 2)]


def test_an_empty_run_has_no_block_figures() -> None:
    s = result((), traffic=(), end_ms=0).summary()
    assert s.blocks == 0
    assert s.mean_block_time_ms is None and s.messages_per_block is None
    assert s.kb_per_s == 0.0 and s.latency_p50_ms is None
