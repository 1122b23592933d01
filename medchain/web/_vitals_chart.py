"""Vitals as charts drawn on the server: each measurement's readings over a time range
cut into at most MAX_BUCKETS buckets (lowest, mean, highest and count in each), so a
chart of 100,000 readings is a few hundred points; and the geometry of the inline SVG
that draws them (no chart library, no script: the page's CSP allows neither)."""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from operator import itemgetter

from medchain.gateway import VitalKind, VitalReading

MAX_BUCKETS = 240
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 12, 40
"""The plot's margins inside the SVG: room for the value and time labels."""
X_TICKS = 5
DAY_MS = 86_400_000

_PARTS = {VitalKind.BLOOD_PRESSURE: ("Systolic blood pressure", "Diastolic blood pressure")}


@dataclass(frozen=True)
class Bucket:
    start_ms: int
    end_ms: int
    low: float
    mean: float
    high: float
    count: int

    @property
    def when(self) -> str:
        return _moment(self.start_ms, with_time=True)


@dataclass(frozen=True)
class Tick:
    at: float
    """Where along its axis, in SVG units."""
    label: str


@dataclass(frozen=True)
class Chart:
    """One measurement's buckets and the SVG that draws them: the mean as a line, the
    lowest-to-highest range as a band behind it."""

    title: str
    unit: str
    readings: int
    buckets: tuple[Bucket, ...]
    mean_points: str
    """The line's points, "x,y x,y ...": one a bucket."""
    band_points: str
    x_ticks: tuple[Tick, ...]
    y_ticks: tuple[Tick, ...]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    """Where the plot starts and ends across the SVG."""

    @property
    def summary(self) -> str:
        """The chart in one sentence, for a screen reader."""
        low = min(b.low for b in self.buckets)
        high = max(b.high for b in self.buckets)
        mean = sum(b.mean * b.count for b in self.buckets) / self.readings
        return (
            f"{self.readings} readings from {self.buckets[0].when} to {self.buckets[-1].when}: "
            f"lowest {_number(low)}, mean {_number(mean)}, highest {_number(high)} {self.unit}"
        )


def bucketed(points: Iterable[tuple[int, float]], from_ms: int, to_ms: int) -> list[Bucket]:
    """`points` (time, value) between `from_ms` and `to_ms` in at most MAX_BUCKETS
    buckets of equal width, oldest first; empty buckets are left out. Sorted by time,
    each bucket is one slice whose end is found by bisection and whose lowest, sum and
    highest are taken in C: 100,000 points cost a few hundred Python steps."""
    width = max(1, -(-(to_ms - from_ms + 1) // MAX_BUCKETS))
    ordered = sorted(points, key=itemgetter(0))  # stable; readings come sorted already
    times = [time_ms for time_ms, _ in ordered]
    values = [value for _, value in ordered]
    found = []
    at = 0
    while at < len(times):
        index = (times[at] - from_ms) // width
        start = from_ms + index * width
        end = bisect_left(times, start + width, at)
        inside = values[at:end]
        found.append(
            Bucket(
                start,
                min(to_ms, start + width - 1),
                min(inside),
                sum(inside) / len(inside),
                max(inside),
                len(inside),
            )
        )
        at = end
    return found


def charts(readings: Sequence[VitalReading], from_ms: int, to_ms: int) -> list[Chart]:
    """A chart for each measurement in `readings` (blood pressure's two values apart),
    in the order they first appear; falls are not charted (see `falls`)."""
    kinds: dict[tuple[VitalKind, str], list[VitalReading]] = {}
    for reading in readings:  # grouped first: a chart of 100,000 readings names few
        if reading.kind is not VitalKind.FALL:
            kinds.setdefault((reading.kind, reading.unit), []).append(reading)
    drawn = []
    for (kind, unit), of_kind in kinds.items():
        names = _PARTS.get(kind, (of_kind[0].measurement.capitalize(),))
        for part, name in enumerate(names):
            points = [(r.time_ms, r.values[part]) for r in of_kind if len(r.values) > part]
            if points:
                buckets = bucketed(points, from_ms, to_ms)
                drawn.append(chart(name, unit, buckets, from_ms, to_ms))
    return drawn


def falls(readings: Iterable[VitalReading]) -> list[str]:
    """When a fall detector reported a fall."""
    return [
        _moment(r.time_ms, with_time=True)
        for r in readings
        if r.kind is VitalKind.FALL and r.values[0]
    ]


def chart(title: str, unit: str, buckets: list[Bucket], from_ms: int, to_ms: int) -> Chart:
    lowest, step, count = _value_scale(min(b.low for b in buckets), max(b.high for b in buckets))
    highest = lowest + step * count
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    span = max(1, to_ms - from_ms)

    def x(time_ms: int) -> float:
        return LEFT + plot_w * (time_ms - from_ms) / span

    def y(value: float) -> float:
        return TOP + plot_h * (highest - value) / (highest - lowest)

    middles = [x((b.start_ms + b.end_ms) // 2) for b in buckets]
    upper = [f"{mx:.1f},{y(b.high):.1f}" for mx, b in zip(middles, buckets, strict=True)]
    lower = [f"{mx:.1f},{y(b.low):.1f}" for mx, b in zip(middles, buckets, strict=True)]
    with_time = to_ms - from_ms <= 2 * DAY_MS
    times = [from_ms + span * i // (X_TICKS - 1) for i in range(X_TICKS)]
    x_ticks = tuple(Tick(x(t), _moment(t, with_time=with_time)) for t in times)
    y_ticks = tuple(
        Tick(y(lowest + step * i), _number(lowest + step * i)) for i in range(count + 1)
    )
    return Chart(
        title=title,
        unit=unit,
        readings=sum(b.count for b in buckets),
        buckets=tuple(buckets),
        mean_points=" ".join(
            f"{mx:.1f},{y(b.mean):.1f}" for mx, b in zip(middles, buckets, strict=True)
        ),
        band_points=" ".join(upper + lower[::-1]),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
    )


def _value_scale(low: float, high: float) -> tuple[float, float, int]:
    """A value axis covering `low` to `high` in round steps: (its lowest tick, the
    step, how many steps), four or so steps of 1, 2 or 5 times a power of ten."""
    if high - low < 1e-9:
        low, high = low - 1, high + 1
    rough = (high - low) / 4
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    bottom = math.floor(low / step) * step
    return bottom, step, max(1, math.ceil((high - bottom) / step - 1e-9))


def _number(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def _moment(ms: int, *, with_time: bool) -> str:
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    return moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")
