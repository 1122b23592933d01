"""Vitals charted on the server: readings cut into at most MAX_BUCKETS buckets (lowest,
mean, highest, count), each measurement its own chart (blood pressure's two values
apart), falls listed, and the SVG's points placed where the buckets are."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from medchain.gateway import VitalKind, VitalReading
from medchain.web._vitals_chart import (
    HEIGHT,
    LEFT,
    MAX_BUCKETS,
    TOP,
    WIDTH,
    bucketed,
    charts,
    falls,
)

START = 1_714_550_400_000  # 2024-05-01T08:00:00Z
MINUTE = 60_000
DAY = 1_440 * MINUTE


def _reading(time_ms: int, kind: VitalKind, *values: float, unit: str = "/min") -> VitalReading:
    return VitalReading(
        b"r" * 32, b"d" * 20, time_ms, 0, kind, "http://loinc.org", "x", values, unit, b"{}",
        b"b" * 16, 1,
    )  # fmt: skip


def _points(text: str) -> list[tuple[float, float]]:
    return [(float(x), float(y)) for x, y in (p.split(",") for p in text.split())]


def test_buckets_hold_the_lowest_mean_highest_and_count() -> None:
    points = [(START, 60.0), (START + 1, 70.0), (START + 2, 80.0), (START + DAY - 1, 50.0)]
    first, last = bucketed(points, START, START + DAY - 1)
    assert (first.low, first.mean, first.high, first.count) == (60.0, 70.0, 80.0, 3)
    assert (last.low, last.mean, last.high, last.count) == (50.0, 50.0, 50.0, 1)
    assert first.start_ms == START and last.end_ms == START + DAY - 1
    assert last.start_ms == START + (MAX_BUCKETS - 1) * (DAY // MAX_BUCKETS)


@given(
    st.lists(st.tuples(st.integers(0, 30 * DAY), st.integers(30, 200)), min_size=1),
    st.integers(1, 30 * DAY),
)
def test_any_readings_fit_in_at_most_max_buckets_and_none_is_lost(
    offsets: list[tuple[int, int]], span: int
) -> None:
    end = START + max(span, max(t for t, _ in offsets))
    points = [(START + t, float(v)) for t, v in offsets]
    found = bucketed(points, START, end)
    assert 1 <= len(found) <= MAX_BUCKETS
    assert sum(b.count for b in found) == len(points)
    assert min(b.low for b in found) == min(v for _, v in points)
    assert max(b.high for b in found) == max(v for _, v in points)
    for bucket in found:
        inside = [v for t, v in points if bucket.start_ms <= t <= bucket.end_ms]
        assert len(inside) == bucket.count and bucket.low <= bucket.mean <= bucket.high


def _bucketed_point_by_point(
    points: list[tuple[int, float]], from_ms: int, to_ms: int
) -> list[tuple[int, int, float, float, float, int]]:
    """The buckets as first drawn (start, end, low, mean, high, count): each point
    added in turn to its bucket's lowest, sum, highest and count."""
    width = max(1, -(-(to_ms - from_ms + 1) // MAX_BUCKETS))
    sums: dict[int, list[float]] = {}
    for time_ms, value in points:
        found = sums.setdefault((time_ms - from_ms) // width, [value, 0.0, value, 0.0])
        found[0], found[2] = min(found[0], value), max(found[2], value)
        found[1] += value
        found[3] += 1
    return [
        (from_ms + i * width, min(to_ms, from_ms + (i + 1) * width - 1), lo, sum_ / n, hi, int(n))
        for i, (lo, sum_, hi, n) in sorted(sums.items())
    ]


@given(
    st.lists(st.tuples(st.integers(0, 30 * DAY), st.floats(30, 200)), min_size=1),
    st.integers(1, 30 * DAY),
)
def test_buckets_are_those_of_adding_each_point_in_turn(
    offsets: list[tuple[int, float]], span: int
) -> None:
    end = START + max(span, max(t for t, _ in offsets))
    points = sorted(((START + t, v) for t, v in offsets), key=lambda p: p[0])  # as read back
    found = bucketed(points, START, end)
    expected = _bucketed_point_by_point(points, START, end)
    assert [(b.start_ms, b.end_ms, b.low, b.mean, b.high, b.count) for b in found] == expected


def test_each_measurement_is_a_chart_and_blood_pressure_two() -> None:
    beats = [_reading(START + i * MINUTE, VitalKind.HEART_RATE, 60 + i) for i in range(10)]
    readings = [
        *beats,
        _reading(START, VitalKind.BLOOD_PRESSURE, 120, 80, unit="mm[Hg]"),
        _reading(START + MINUTE, VitalKind.FALL, 1.0, unit=""),
        _reading(START + 2 * MINUTE, VitalKind.FALL, 0.0, unit=""),
    ]
    drawn = charts(readings, START, START + DAY - 1)
    assert [(c.title, c.unit, c.readings) for c in drawn] == [
        ("Heart rate", "/min", 10),
        ("Systolic blood pressure", "mm[Hg]", 1),
        ("Diastolic blood pressure", "mm[Hg]", 1),
    ]
    assert [b.mean for b in drawn[1].buckets] == [120]
    assert [b.mean for b in drawn[2].buckets] == [80]
    assert falls(readings) == ["2024-05-01 08:01"]


def test_the_svg_line_has_a_point_a_bucket_inside_the_plot_rising_with_the_value() -> None:
    readings = [_reading(START + i * DAY // 4, VitalKind.HEART_RATE, 60 + 10 * i) for i in range(4)]
    (chart,) = charts(readings, START, START + DAY - 1)
    line = _points(chart.mean_points)
    assert len(line) == len(chart.buckets) == 4
    xs, ys = [x for x, _ in line], [y for _, y in line]
    assert xs == sorted(xs) and ys == sorted(ys, reverse=True)  # later is right, higher is up
    assert all(LEFT <= x <= WIDTH and TOP <= y <= HEIGHT for x, y in line)
    assert len(_points(chart.band_points)) == 2 * len(line)
    labels = [t.label for t in chart.y_ticks]
    assert float(labels[0]) <= 60 and float(labels[-1]) >= 90
    assert chart.x_ticks[0].label == "2024-05-01 08:00"
    assert chart.summary == (
        "4 readings from 2024-05-01 08:00 to 2024-05-02 02:00: lowest 60, mean 75, highest 90 /min"
    )
