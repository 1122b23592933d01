"""Budgets of verification work: token buckets that may be overdrawn, refunded, and
forgotten, one per client address (an IPv6 /64) or peer."""

from __future__ import annotations

import pytest

from medchain.node._budget import Budget, Budgets, TokenBucket, client_key


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_lets_a_request_overdraw_it_then_waits_for_the_refill() -> None:
    bucket = TokenBucket(Budget(rate=100, burst=1_000), now=0.0)
    assert bucket.level(0.0) == 1_000 and bucket.wait_s(0.0) == 0
    bucket.take(1_500, 0.0)  # one request may cost more than is left
    assert bucket.level(0.0) == -500
    assert bucket.wait_s(0.0) == pytest.approx(5.01)
    assert bucket.wait_s(5.0) == pytest.approx(0.01)
    assert bucket.wait_s(5.1) == 0
    bucket.give_back(10_000, 6.0)  # refunds never fill it past its burst
    assert bucket.level(6.0) == 1_000 and bucket.full


def test_budgets_keep_one_bucket_per_source_and_forget_the_least_used() -> None:
    clock = Clock()
    budgets = Budgets(Budget(rate=10, burst=100), max_sources=2, clock=clock)
    assert budgets.wait_s("a") == 0 and len(budgets) == 0  # asking creates nothing
    budgets.bucket("a").take(200, clock())
    budgets.bucket("b").take(200, clock())
    assert budgets.wait_s("a") == pytest.approx(10.1)
    clock.now += 5
    assert budgets.wait_s("a") == pytest.approx(5.1)
    budgets.bucket("a")  # a used more recently than b
    budgets.bucket("c")
    assert len(budgets) == 2
    assert budgets.wait_s("b") == 0  # forgotten: forgiven, never charged twice
    assert budgets.wait_s("a") > 0


@pytest.mark.parametrize(
    ("host", "key"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("testclient", "testclient"),
    ],
)
def test_clients_are_told_apart_by_address_and_ipv6_by_their_64(host: str, key: str) -> None:
    assert client_key(host) == key


def test_a_budget_is_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Budget(rate=0, burst=10)
