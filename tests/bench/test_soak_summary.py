"""The soak's arithmetic on synthetic samples: the least-squares slope, when a run counts
as settled, each process's figures and the verdicts against the targets."""

from __future__ import annotations

import dataclasses
import json

import pytest

from medchain.bench._soak_summary import (
    MB,
    ORDINARY,
    PRODUCER,
    Point,
    ProcessSummary,
    Readings,
    SoakResult,
    settle_rule,
    settle_s,
    slope_per_minute,
    soak_json,
    soak_reports,
    summarise_cache,
    summarise_process,
    summarise_roles,
    summarise_soak,
)


def _series(mb_at: list[float], every_s: float = 60.0, cpu_per_s: float = 0.5) -> list[Point]:
    """Samples every `every_s` seconds with these resident sizes (MB)."""
    return [
        Point(i * every_s, round(mb * MB), i * every_s * cpu_per_s) for i, mb in enumerate(mb_at)
    ]


def test_the_slope_of_a_steady_climb_is_its_rate_per_minute() -> None:
    # 3 MB more every 30 s: 6 MB a minute
    points = [(t, 200 + 3 * t / 30) for t in range(0, 600, 30)]
    assert slope_per_minute(points) == pytest.approx(6.0)


def test_noise_about_a_flat_line_gives_a_slope_near_zero() -> None:
    wobble = [0.4, -0.4, 0.2, -0.2] * 10
    points = [(60.0 * i, 300 + w) for i, w in enumerate(wobble)]
    slope = slope_per_minute(points)
    assert slope is not None and abs(slope) < 0.05


def test_a_falling_line_has_a_negative_slope() -> None:
    slope = slope_per_minute([(0.0, 10.0), (60.0, 9.0), (120.0, 8.0)])
    assert slope == pytest.approx(-1.0)


def test_fewer_than_two_times_give_no_slope() -> None:
    assert slope_per_minute([]) is None
    assert slope_per_minute([(60.0, 1.0)]) is None
    assert slope_per_minute([(60.0, 1.0), (60.0, 5.0)]) is None


def test_a_run_of_100_minutes_or_more_settles_after_ten_minutes() -> None:
    assert settle_s(6_000) == 600 and settle_s(3 * 3_600) == 600
    assert "10 minutes" in settle_rule(6_000)


def test_a_shorter_run_settles_after_its_first_tenth() -> None:
    assert settle_s(3_600) == 360 and settle_s(60) == 6
    assert "tenth" in settle_rule(3_600) and "360 s" in settle_rule(3_600)


def test_the_slope_leaves_out_the_warm_up() -> None:
    # climbs 200 MB in the first 10 minutes (caches filling), then flat for 50 minutes
    climb = [100 + 20 * i for i in range(11)]
    series = _series(climb + [300.0] * 50)
    summary = summarise_process("node0", series, settle_s(3_600 * 2), judged=True)
    assert summary.rss_start_bytes == 100 * MB
    assert summary.rss_settled_bytes == 300 * MB  # the sample at 10 minutes
    assert summary.rss_end_bytes == 300 * MB
    assert summary.slope_mb_per_min == pytest.approx(0.0)
    assert summary.within_target
    whole = slope_per_minute([(p.t_s, p.rss_bytes / MB) for p in series])
    assert whole is not None and whole > 1.0  # the warm-up alone would have failed it


def test_a_leak_after_settling_fails_the_target() -> None:
    series = _series([100 + 1.5 * i for i in range(70)])  # 1.5 MB a minute throughout
    summary = summarise_process("gateway", series, 600, judged=True)
    assert summary.slope_mb_per_min == pytest.approx(1.5)
    assert not summary.within_target
    assert summary.samples == 70


def test_cpu_share_is_cpu_seconds_over_the_run() -> None:
    summary = summarise_process("node1", _series([100.0] * 11, cpu_per_s=0.25), 60, judged=True)
    assert summary.cpu_share == pytest.approx(0.25)


def test_one_sample_after_settling_gives_no_slope_and_fails() -> None:
    summary = summarise_process("node2", _series([100.0, 101.0]), 60, judged=True)
    assert summary.rss_settled_bytes == 101 * MB
    assert summary.slope_mb_per_min is None and not summary.within_target


def _result(processes: list[ProcessSummary], readings: Readings) -> SoakResult:
    return SoakResult(
        validators=4,
        consensus="afbft",
        patients=10,
        devices=50,
        rate_per_s=20,
        duration_s=3_600,
        sample_s=60,
        settle_s=360,
        settle_rule=settle_rule(3_600),
        samples=61,
        samples_expected=61,
        height=7_000,
        processes=processes,
        readings=readings,
    )


FLAT = [100.0] * 61
LEAKY = [100 + 2.0 * i for i in range(61)]
ALL_COMMITTED = Readings(sent=1_000, acknowledged=1_000, committed=1_000, lost=0)


def test_the_soak_passes_with_flat_memory_and_nothing_lost() -> None:
    series = {"node0": _series(FLAT), "gateway": _series(FLAT), "load generator": _series(LEAKY)}
    processes = summarise_soak(series, {"node0", "gateway"}, 360)
    assert [p.name for p in processes] == ["node0", "gateway", "load generator"]
    result = _result(processes, ALL_COMMITTED)
    # the load generator's own growth is shown, not judged
    assert result.memory_within_target and result.none_lost and result.passed


def test_a_leaking_validator_fails_the_soak() -> None:
    series = {"node0": _series(FLAT), "node3": _series(LEAKY)}
    result = _result(summarise_soak(series, {"node0", "node3"}, 360), ALL_COMMITTED)
    assert not result.memory_within_target and not result.passed


def test_a_lost_reading_fails_the_soak() -> None:
    processes = summarise_soak({"node0": _series(FLAT)}, {"node0"}, 360)
    lost = Readings(sent=1_000, acknowledged=1_000, committed=999, lost=1)
    result = _result(processes, lost)
    assert result.memory_within_target and not result.none_lost and not result.passed


def test_a_gateway_that_never_drained_fails_the_soak() -> None:
    processes = summarise_soak({"node0": _series(FLAT)}, {"node0"}, 360)
    stuck = Readings(sent=10, acknowledged=10, committed=10, lost=0, drained=False)
    assert not _result(processes, stuck).none_lost


def test_the_json_summary_carries_the_figures_and_the_verdicts() -> None:
    series = {"node0": _series(FLAT), "node1": _series(LEAKY)}
    result = _result(summarise_soak(series, {"node0", "node1"}, 360), ALL_COMMITTED)
    doc = json.loads(json.dumps(soak_json(result)))
    assert doc["verdicts"] == {
        "memory_slope_below_1_mb_per_min": False,
        "no_reading_lost": True,
        "passed": False,
    }
    node1 = doc["processes"][1]
    assert node1["name"] == "node1" and node1["slope_mb_per_min"] == pytest.approx(2.0)
    assert doc["readings"]["lost"] == 0 and doc["settle_s"] == 360


def test_the_tables_show_each_process_and_each_verdict() -> None:
    series = {"node0": _series(FLAT), "load generator": _series(LEAKY)}
    result = _result(summarise_soak(series, {"node0"}, 360), ALL_COMMITTED)
    memory, readings = soak_reports(result)
    assert [row[0] for row in memory.rows] == ["node0", "load generator"]
    assert memory.rows[0][-1] == "pass" and "not judged" in memory.rows[1][-1]
    assert memory.rows[1][4] == "+2.000"
    assert "tenth" in memory.notes[0] and "61 of 61" in memory.notes[0]
    verdicts = {row[0]: row[1] for row in readings.rows}
    assert (
        verdicts["soak"] == "PASSED"
        and verdicts["lost (acknowledged, not committed after the drain)"] == "0"
    )


def test_the_state_cache_filling_then_full_is_summarised_with_its_settled_slope() -> None:
    filling = [(i * 60.0, min(i, 5) * 10 * MB) for i in range(61)]  # full after 5 min
    cache = summarise_cache(filling, 360)
    assert cache.samples == 61 and cache.start_bytes == 0
    assert cache.settled_bytes == cache.end_bytes == 50 * MB
    assert cache.slope_mb_per_min == pytest.approx(0.0)


def test_the_tables_and_the_json_show_the_state_cache_beside_the_memory() -> None:
    processes = summarise_soak({"node0": _series(FLAT)}, {"node0"}, 360)
    cache = summarise_cache([(0.0, 1 * MB), (400.0, 20 * MB), (460.0, 21 * MB)], 360)
    result = dataclasses.replace(_result(processes, ALL_COMMITTED), state_cache=cache)
    memory, _ = soak_reports(result)
    assert "state cache" in memory.notes[1] and "20.0 settled" in memory.notes[1]
    assert "+1.000 MB/min" in memory.notes[1]
    doc = json.loads(json.dumps(soak_json(result)))
    assert doc["state_cache"]["end_bytes"] == 21 * MB
    without, _ = soak_reports(_result(processes, ALL_COMMITTED))
    assert len(without.notes) == 1


def _by_role(cpu_per_s: dict[str, float], proposed: dict[str, int]) -> list[ProcessSummary]:
    series = {name: _series(FLAT, cpu_per_s=cpu) for name, cpu in cpu_per_s.items()}
    return summarise_soak(series, set(proposed), 360)


def test_nodes_are_split_by_whether_they_proposed_and_summarised_per_role() -> None:
    cpu = {"node0": 0.5, "node1": 0.3, "node2": 0.1, "node3": 0.3, "gateway": 0.9}
    proposed = {"node0": 40, "node1": 38, "node2": 0, "node3": 0}
    grow = {"node2": _series([100 + i for i in range(61)], cpu_per_s=0.1)}
    processes = [p for p in _by_role(cpu, proposed) if p.name != "node2"]
    processes.insert(2, summarise_soak(grow, {"node2"}, 360)[0])
    producers, ordinary = summarise_roles(processes, proposed)
    assert (producers.role, producers.nodes) == (PRODUCER, ["node0", "node1"])
    assert (ordinary.role, ordinary.nodes) == (ORDINARY, ["node2", "node3"])  # not the gateway
    assert producers.blocks_proposed == 78 and ordinary.blocks_proposed == 0
    assert producers.cpu_share_mean == pytest.approx(0.4)
    assert (producers.cpu_share_min, producers.cpu_share_max) == pytest.approx((0.3, 0.5))
    assert ordinary.cpu_share_mean == pytest.approx(0.2)
    assert producers.rss_start_mean_bytes == producers.rss_end_mean_bytes == 100 * MB
    assert ordinary.rss_end_mean_bytes == (160 + 100) * MB // 2
    assert producers.slope_mean_mb_per_min == pytest.approx(0.0)
    assert ordinary.slope_mean_mb_per_min == pytest.approx(0.5)  # (1 + 0) / 2


def test_a_run_without_ordinary_nodes_or_proposals_has_only_what_it_saw() -> None:
    processes = _by_role({"node0": 0.5, "node1": 0.4}, {"node0": 3, "node1": 2})
    assert [r.role for r in summarise_roles(processes, {"node0": 3, "node1": 2})] == [PRODUCER]
    assert summarise_roles(processes, {}) == []


def test_the_roles_table_compares_producers_with_ordinary_nodes() -> None:
    cpu = {"node0": 0.5, "node1": 0.3, "node2": 0.2}
    proposed = {"node0": 10, "node1": 9, "node2": 0}
    processes = _by_role(cpu, proposed)
    result = dataclasses.replace(
        _result(processes, ALL_COMMITTED),
        consensus="dpos",
        committee=2,
        proposed=proposed,
        roles=summarise_roles(processes, proposed),
    )
    memory, roles, readings = soak_reports(result)
    assert "producers" not in memory.title and "verdicts" in readings.title
    assert "committees of 2" in roles.title
    assert [row[:3] for row in roles.rows] == [
        ("producer", "node0, node1", "19"),
        ("ordinary", "node2", "0"),
    ]
    assert roles.rows[0][3] == "40.0 % (30.0 to 50.0 %)"
    assert "2.00 times the CPU" in roles.notes[1]
    doc = json.loads(json.dumps(soak_json(result)))
    assert doc["proposed"] == proposed and doc["roles"][1]["nodes"] == ["node2"]
    assert len(soak_reports(_result(processes, ALL_COMMITTED))) == 2  # no roles: no table
