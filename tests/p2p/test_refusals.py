import logging

import pytest

from medchain.p2p import Refusal, RefusalLog, address_group


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="test.refusals")
    return caplog


def make(interval: float = 10.0, max_addresses: int = 256) -> tuple[RefusalLog, Clock]:
    clock = Clock()
    return RefusalLog(logging.getLogger("test.refusals"), interval, clock, max_addresses), clock


def test_a_flood_is_one_line_then_one_summary_per_interval_with_counts(
    log: pytest.LogCaptureFixture,
) -> None:
    refusals, clock = make()
    for i in range(1234):
        clock.now += 0.001
        address = "127.0.0.5" if i < 1200 else "127.0.0.6"
        refusals.refused(Refusal.ADDRESS_BUSY, address, "too many pending handshakes")
    assert log.messages == ["refused a connection from 127.0.0.5: too many pending handshakes"]
    refusals.flush()  # the interval has not ended
    assert len(log.messages) == 1
    clock.now += 10
    refusals.flush()
    assert log.messages[1] == (
        "refused 1,234 connections in the last 11 s: too many pending handshakes from one "
        "address (127.0.0.5: 1,200, 127.0.0.6: 34)"
    )
    assert refusals.counts[Refusal.ADDRESS_BUSY] == 1234


def test_each_cause_gets_at_most_one_line_per_interval(log: pytest.LogCaptureFixture) -> None:
    refusals, clock = make(interval=10)
    for _ in range(60):  # 30 s of refusals of two causes, four a second
        for _ in range(2):
            clock.now += 0.25
            refusals.refused(Refusal.TIMEOUT, "10.1.2.3", "the handshake did not finish in time")
            refusals.refused(Refusal.TLS, "10.1.2.4", "TLS handshake failed", inbound=False)
        refusals.flush()
    timeouts = [line for line in log.messages if "in time" in line]
    tls = [line for line in log.messages if "TLS" in line]
    assert len(timeouts) == len(tls) == 3  # the first one, then a summary per 10 s
    assert tls[0] == "refused a connection to 10.1.2.4: TLS handshake failed"
    assert "refused 40 connections in the last 10 s" in timeouts[1]
    assert refusals.counts[Refusal.TIMEOUT] == refusals.counts[Refusal.TLS] == 120
    assert refusals.counts[Refusal.BUSY] == 0


def test_the_summary_comes_when_the_next_refusal_arrives_late(
    log: pytest.LogCaptureFixture,
) -> None:
    refusals, clock = make(interval=10)
    refusals.refused(Refusal.BAD_HELLO, "10.0.0.9", "malformed hello")
    clock.now += 1
    refusals.refused(Refusal.BAD_HELLO, "10.0.0.9", "malformed hello")
    clock.now += 30  # nobody flushed meanwhile
    refusals.refused(Refusal.BAD_HELLO, "10.0.0.9", "malformed hello")
    assert log.messages == [
        "refused a connection from 10.0.0.9: malformed hello",
        "refused 2 connections in the last 31 s: malformed handshake (10.0.0.9: 2)",
    ]  # the third opened the next interval and waits for its summary


def test_a_quiet_interval_makes_the_next_refusal_logged_at_once(
    log: pytest.LogCaptureFixture,
) -> None:
    refusals, clock = make(interval=10)
    refusals.refused(Refusal.NOT_ALLOWED, "10.0.0.7", "not in the allow-list")
    clock.now += 10
    refusals.flush()  # nothing more came: no summary, the cause is quiet again
    assert len(log.messages) == 1
    clock.now += 5
    refusals.refused(Refusal.NOT_ALLOWED, "10.0.0.8", "not in the allow-list")
    assert log.messages[-1] == "refused a connection from 10.0.0.8: not in the allow-list"


def test_the_summary_names_the_busiest_addresses_and_sums_up_the_rest(
    log: pytest.LogCaptureFixture,
) -> None:
    refusals, clock = make(max_addresses=5)
    refusals.refused(Refusal.BUSY, "10.0.0.1", "too many pending handshakes")
    for host in range(1, 11):
        for _ in range(host):
            refusals.refused(Refusal.BUSY, f"10.0.0.{host}", "too many pending handshakes")
    clock.now += 10
    refusals.flush()
    # 10.0.0.1 to .5 are tracked (the first refusal included); .6 to .10 are not
    assert log.messages[-1] == (
        "refused 56 connections in the last 10 s: too many pending handshakes "
        "(10.0.0.5: 5, 10.0.0.4: 4, 10.0.0.3: 3, 44 from other addresses)"
    )


def test_a_final_flush_sums_up_what_is_left_before_the_interval_ends(
    log: pytest.LogCaptureFixture,
) -> None:
    refusals, clock = make(interval=10)
    refusals.refused(Refusal.WRONG_NETWORK, "10.0.0.3", "the peer is on network 'x'")
    refusals.refused(Refusal.PENALISED, "10.0.0.4", "the peer is refused for 20 s more")
    clock.now += 2
    refusals.refused(Refusal.WRONG_NETWORK, "10.0.0.3", "the peer is on network 'x'")
    refusals.flush(final=True)
    assert log.messages[2:] == [
        "refused 2 connections in the last 2 s: peer on another network (10.0.0.3: 2)"
    ]  # nothing more to say of the penalised peer: its one refusal was logged


@pytest.mark.parametrize(
    ("host", "group"),
    [
        ("127.0.0.5", "127.0.0.5"),
        ("::ffff:10.1.2.3", "10.1.2.3"),
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_an_address_is_an_ipv4_address_or_an_ipv6_slash_64(host: str, group: str) -> None:
    assert address_group(host) == group


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        make(interval=0)
