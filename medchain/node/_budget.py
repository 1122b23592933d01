"""Budgets of verification work per client and per peer: token buckets, one per source.

Why: checking a signature costs the node CPU whoever sent it, and a forged transaction
or an anonymous one (which pays no fee) costs it that for nothing. A source draws on
its bucket for the verification work its transactions need; the work of those that
verify is given back, so an honest client or peer never runs dry, while one that sends
forgeries is held to the bucket's rate. A request is let in while the bucket is not
empty and may overdraw it (its cost is only known once it is read); the source then
waits until the overdraft is refilled. Written here rather than taken from a rate
limiting library because of the refunds and the overdraft.

Clients are told apart by their IP address; IPv6 clients by their /64 network, which
one host usually has whole."""

from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_SOURCES = 65_536
"""Buckets kept at most: the least recently used go first (a bucket that went is full
again when its source comes back, so forgetting one only ever forgives a debt)."""


@dataclass(frozen=True, slots=True)
class Budget:
    """`rate` work units a second, up to `burst` saved (units: `ED25519_COST`)."""

    rate: int
    burst: int

    def __post_init__(self) -> None:
        if self.rate < 1 or self.burst < 1:
            raise ValueError(f"a budget needs a positive rate and burst, not {self}")


class TokenBucket:
    def __init__(self, budget: Budget, now: float) -> None:
        self.budget = budget
        self._level = float(budget.burst)
        self._at = now

    def level(self, now: float) -> float:
        """Work units available now; negative while an overdraft is being repaid."""
        self._refill(now)
        return self._level

    def wait_s(self, now: float) -> float:
        """Seconds until the bucket lets a request in (0: now)."""
        level = self.level(now)
        return 0.0 if level > 0 else (1 - level) / self.budget.rate

    def take(self, units: int, now: float) -> None:
        self._refill(now)
        self._level -= units

    def give_back(self, units: int, now: float) -> None:
        self._refill(now)
        self._level = min(float(self.budget.burst), self._level + units)

    @property
    def full(self) -> bool:
        return self._level >= self.budget.burst

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._at)
        self._at = now
        self._level = min(float(self.budget.burst), self._level + elapsed * self.budget.rate)


def client_key(host: str) -> str:
    """Whose bucket a client at `host` draws on: its IPv4 address, its IPv6 /64, or the
    host string as given when it is not an IP address (a Unix socket, a test client)."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Budgets:
    """One bucket per source key, created full on first use, least recently used
    forgotten past `max_sources`."""

    def __init__(
        self,
        budget: Budget,
        *,
        max_sources: int = MAX_SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.budget = budget
        self.max_sources = max_sources
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def now(self) -> float:
        return self._clock()

    def bucket(self, key: str) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.budget, self._clock())
            while len(self._buckets) > self.max_sources:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket

    def wait_s(self, key: str) -> float:
        """Seconds until `key` may send work again (0: now). Creates no bucket."""
        bucket = self._buckets.get(key)
        return 0.0 if bucket is None else bucket.wait_s(self._clock())
