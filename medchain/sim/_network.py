"""The simulated network: per-link latency, jitter, loss and bandwidth, and partitions.

Every quantity is an integer (milliseconds, bytes per second, parts per million)
and every random draw comes from a per-link `random.Random` derived from the
simulator's seed, so a run's fate for each message depends only on the seed and on
what was sent on that link before it.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from medchain.sim._clock import derive_rng, ms_to_us

PPM = 1_000_000
"""Loss probabilities are integers out of a million: 50_000 is 5 %."""


@dataclass(frozen=True, slots=True)
class LinkConfig:
    """One direction of one link."""

    latency_ms: int = 0
    jitter_ms: int = 0
    """Uniform jitter of up to ± this much, drawn per message in whole microseconds;
    a message never arrives before it has left."""
    loss_ppm: int = 0
    """Chance, per million, that a message is lost after it has used the link."""
    bytes_per_s: int | None = None
    """Bandwidth as a serialisation delay, ceil(size / rate); a message waits for the
    previous one on the same link. None: unlimited."""

    def __post_init__(self) -> None:
        if self.latency_ms < 0 or self.jitter_ms < 0:
            raise ValueError("latency and jitter must not be negative")
        if not 0 <= self.loss_ppm <= PPM:
            raise ValueError(f"loss_ppm must be within 0..{PPM}")
        if self.bytes_per_s is not None and self.bytes_per_s <= 0:
            raise ValueError("bytes_per_s must be positive (or None for unlimited)")


@dataclass(frozen=True, slots=True)
class Partition:
    """From `start_ms` until (not including) `end_ms`, nodes in different groups cannot
    reach each other. Nodes listed in no group form one more group together, so
    `Partition((frozenset({3}),), t1, t2)` isolates node 3 alone."""

    groups: tuple[frozenset[int], ...]
    start_ms: int
    end_ms: int

    def __post_init__(self) -> None:
        seen: set[int] = set()
        for group in self.groups:
            if seen & group:
                raise ValueError("a node may be in only one group of a partition")
            seen |= group
        if self.end_ms < self.start_ms:
            raise ValueError("a partition must end after it starts")

    def _group_of(self, node: int) -> int:
        for i, group in enumerate(self.groups):
            if node in group:
                return i
        return -1

    def separates(self, a: int, b: int, at_ms: int) -> bool:
        if not self.start_ms <= at_ms < self.end_ms:
            return False
        return self._group_of(a) != self._group_of(b)


@dataclass(frozen=True, slots=True)
class NetworkConfig:
    default: LinkConfig = LinkConfig()
    links: Mapping[tuple[int, int], LinkConfig] = field(default_factory=dict)
    """Overrides for directed links (sender index, receiver index)."""
    partitions: tuple[Partition, ...] = ()
    fifo: bool = False
    """Keep each link in order (TCP); otherwise jitter may reorder messages."""

    def link(self, src: int, dst: int) -> LinkConfig:
        return self.links.get((src, dst), self.default)

    def cut(self, src: int, dst: int, at_ms: int) -> bool:
        return any(p.separates(src, dst, at_ms) for p in self.partitions)


def symmetric(pairs: Mapping[tuple[int, int], LinkConfig]) -> dict[tuple[int, int], LinkConfig]:
    """Link overrides for both directions of each listed pair."""
    links: dict[tuple[int, int], LinkConfig] = {}
    for (a, b), config in pairs.items():
        links[(a, b)] = config
        links[(b, a)] = config
    return links


class Drop(enum.StrEnum):
    LOST = "lost"
    PARTITIONED = "partitioned"
    CRASHED = "crashed"
    """The receiver was down when the message arrived."""
    UNKNOWN = "unknown"
    """Sent to a key no node holds."""


def serialisation_us(size: int, bytes_per_s: int | None) -> int:
    if bytes_per_s is None:
        return 0
    return -(-size * 1_000_000 // bytes_per_s)


class Network:
    """The links' state: when each is next free, its last arrival, its random stream."""

    __slots__ = ("_busy_until", "_config", "_last_arrival", "_rngs", "_salt")

    def __init__(self, config: NetworkConfig, salt: bytes) -> None:
        self._config = config
        self._salt = salt
        self._rngs: dict[tuple[int, int], random.Random] = {}
        self._busy_until: dict[tuple[int, int], int] = {}
        self._last_arrival: dict[tuple[int, int], int] = {}

    @property
    def config(self) -> NetworkConfig:
        return self._config

    def _rng(self, link: tuple[int, int]) -> random.Random:
        rng = self._rngs.get(link)
        if rng is None:
            rng = self._rngs[link] = derive_rng(self._salt, "link", *link)
        return rng

    def transmit(self, src: int, dst: int, size: int, now_us: int) -> int | Drop:
        """Put one message on the link at `now_us`: its arrival time, or why it is lost.

        A partition drops it before it uses the link; a lost message still takes its
        turn on the link (it was sent, then lost)."""
        if self._config.cut(src, dst, now_us // 1000):
            return Drop.PARTITIONED
        link = (src, dst)
        config = self._config.link(src, dst)
        rng = self._rng(link)
        start = max(now_us, self._busy_until.get(link, now_us))
        finish = start + serialisation_us(size, config.bytes_per_s)
        self._busy_until[link] = finish
        lost = rng.randrange(PPM) < config.loss_ppm
        jitter_us = ms_to_us(config.jitter_ms)
        offset = rng.randint(-jitter_us, jitter_us) if jitter_us else 0
        if lost:
            return Drop.LOST
        arrival = max(finish, finish + ms_to_us(config.latency_ms) + offset)
        if self._config.fifo:
            arrival = max(arrival, self._last_arrival.get(link, arrival))
            self._last_arrival[link] = arrival
        return arrival
