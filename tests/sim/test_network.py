"""The network model: latency, jitter, bandwidth queues, loss and partitions, computed
exactly as configured from the seeded per-link streams."""

from __future__ import annotations

import pytest

from medchain.sim import (
    PPM,
    Drop,
    LinkConfig,
    Network,
    NetworkConfig,
    Partition,
    serialisation_us,
    symmetric,
)

SALT = b"network-test"


def test_latency_is_added_to_every_message() -> None:
    net = Network(NetworkConfig(LinkConfig(latency_ms=25)), SALT)
    assert net.transmit(0, 1, 500, 1_000) == 26_000
    assert net.transmit(1, 0, 0, 2_000) == 27_000


def test_jitter_stays_within_bounds_and_varies() -> None:
    net = Network(NetworkConfig(LinkConfig(latency_ms=20, jitter_ms=5)), SALT)
    arrivals = []
    for _ in range(2_000):
        fate = net.transmit(0, 1, 10, 0)
        assert isinstance(fate, int)
        arrivals.append(fate)
    assert min(arrivals) >= 15_000
    assert max(arrivals) <= 25_000
    assert len(set(arrivals)) > 500
    assert min(arrivals) < 16_000 and max(arrivals) > 24_000


def test_jitter_never_makes_a_message_arrive_before_it_left() -> None:
    net = Network(NetworkConfig(LinkConfig(latency_ms=1, jitter_ms=10)), SALT)
    for _ in range(500):
        fate = net.transmit(0, 1, 1, 5_000)
        assert isinstance(fate, int) and fate >= 5_000


def test_bandwidth_is_a_serialisation_delay_with_a_queue_per_link() -> None:
    # 1000 bytes/s: 100 bytes take 100 ms on the wire; 10 ms latency after that.
    net = Network(NetworkConfig(LinkConfig(latency_ms=10, bytes_per_s=1_000)), SALT)
    assert net.transmit(0, 1, 100, 0) == 110_000
    assert net.transmit(0, 1, 100, 0) == 210_000  # waits for the first
    assert net.transmit(0, 1, 50, 0) == 260_000
    assert net.transmit(0, 2, 100, 0) == 110_000  # another link is free
    assert net.transmit(1, 0, 100, 0) == 110_000  # and so is the other direction
    assert net.transmit(0, 1, 100, 500_000) == 610_000  # the queue drained meanwhile


def test_serialisation_rounds_up_to_the_microsecond() -> None:
    assert serialisation_us(1, 3) == 333_334
    assert serialisation_us(0, 3) == 0
    assert serialisation_us(10**6, None) == 0


def test_loss_drops_about_the_configured_share() -> None:
    net = Network(NetworkConfig(LinkConfig(loss_ppm=PPM // 10)), SALT)
    sent = 20_000
    lost = sum(net.transmit(0, 1, 1, 0) is Drop.LOST for _ in range(sent))
    # Binomial(20000, 0.1): sd ~ 42, so +-400 is ~10 sd.
    assert abs(lost - sent // 10) < 400


def test_loss_extremes() -> None:
    never = Network(NetworkConfig(LinkConfig(loss_ppm=0)), SALT)
    always = Network(NetworkConfig(LinkConfig(loss_ppm=PPM)), SALT)
    assert all(isinstance(never.transmit(0, 1, 1, 0), int) for _ in range(1000))
    assert all(always.transmit(0, 1, 1, 0) is Drop.LOST for _ in range(1000))


def test_a_lost_message_still_used_the_link() -> None:
    net = Network(NetworkConfig(LinkConfig(bytes_per_s=1_000, loss_ppm=PPM)), SALT)
    assert net.transmit(0, 1, 100, 0) is Drop.LOST
    net2 = Network(NetworkConfig(LinkConfig(bytes_per_s=1_000)), SALT)
    net2.transmit(0, 1, 100, 0)
    assert net2.transmit(0, 1, 100, 0) == 200_000


def test_same_salt_same_fates_and_links_are_independent() -> None:
    config = NetworkConfig(LinkConfig(latency_ms=5, jitter_ms=3, loss_ppm=200_000))
    a, b = Network(config, SALT), Network(config, SALT)
    fates_a = [a.transmit(0, 1, 10, t * 1000) for t in range(200)]
    for t in range(200):  # traffic on another link in between changes nothing on 0->1
        b.transmit(2, 3, 10, t * 1000)
    fates_b = [b.transmit(0, 1, 10, t * 1000) for t in range(200)]
    assert fates_a == fates_b
    other = Network(config, b"other salt")
    assert [other.transmit(0, 1, 10, t * 1000) for t in range(200)] != fates_a


def test_fifo_keeps_a_link_in_order() -> None:
    jittery = LinkConfig(latency_ms=10, jitter_ms=9)
    reordering = Network(NetworkConfig(jittery), SALT)
    ordered = Network(NetworkConfig(jittery, fifo=True), SALT)
    plain = [int(reordering.transmit(0, 1, 1, t * 100)) for t in range(300)]
    kept = [int(ordered.transmit(0, 1, 1, t * 100)) for t in range(300)]
    assert plain != sorted(plain)
    assert kept == sorted(kept)


def test_per_link_overrides() -> None:
    config = NetworkConfig(
        LinkConfig(latency_ms=10),
        links=symmetric({(0, 1): LinkConfig(latency_ms=100)}),
    )
    net = Network(config, SALT)
    assert net.transmit(0, 1, 1, 0) == 100_000
    assert net.transmit(1, 0, 1, 0) == 100_000
    assert net.transmit(0, 2, 1, 0) == 10_000


def test_partitions_cut_across_groups_only_while_active() -> None:
    cut = Partition((frozenset({0, 1}), frozenset({2})), start_ms=100, end_ms=200)
    assert cut.separates(0, 2, 100) and cut.separates(2, 1, 199)
    assert not cut.separates(0, 1, 150)
    assert not cut.separates(0, 2, 99) and not cut.separates(0, 2, 200)
    # Unlisted nodes form one more group.
    assert cut.separates(3, 0, 150) and cut.separates(3, 2, 150)
    assert not Partition((frozenset({3}),), 0, 10).separates(0, 1, 5)
    net = Network(NetworkConfig(partitions=(cut,)), SALT)
    assert net.transmit(0, 2, 1, 150_000) is Drop.PARTITIONED
    assert net.transmit(0, 1, 1, 150_000) == 150_000
    assert net.transmit(0, 2, 1, 200_000) == 200_000


def test_bad_configurations_are_refused() -> None:
    with pytest.raises(ValueError):
        LinkConfig(loss_ppm=PPM + 1)
    with pytest.raises(ValueError):
        LinkConfig(latency_ms=-1)
    with pytest.raises(ValueError):
        LinkConfig(bytes_per_s=0)
    with pytest.raises(ValueError):
        Partition((frozenset({1}), frozenset({1, 2})), 0, 1)
