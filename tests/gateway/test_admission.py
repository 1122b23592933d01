"""Admission's device records: a device never seen, or whose record expired, is read
from the chain before its readings are decided on (one lookup for a whole group); a
record about to expire is re-read by the gateway's refresh, apart from intake, so a
group of readings seldom waits for the node. (Each refusal and its strike are shown end
to end in test_service.py.)"""

from __future__ import annotations

import threading
from typing import Any

from medchain.app import DeviceState
from medchain.gateway import sign_reading
from medchain.gateway._admission import ReadingRefused
from medchain.gateway._index import ReadingIndex
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)


def test_device_records_about_to_expire_are_refreshed_apart_from_intake(
    world: World,  # noqa: F811
) -> None:
    sims = [world.device() for _ in range(2)]
    chain = world.chain
    lookups: list[tuple[str, int]] = []

    class CountingChain:
        """The chain's device lookup, noting who asked (intake or the refresh) for how
        many devices."""

        asking = "intake"

        def __getattr__(self, name: str) -> Any:
            return getattr(chain, name)

        def devices(self, addresses: list[bytes]) -> Any:
            lookups.append((self.asking, len(addresses)))
            return chain.devices(addresses)

    node = CountingChain()
    service = world.service(ReadingIndex(":memory:"), device_cache_ms=2_000)
    service.admission.chain = node  # type: ignore[assignment]
    service.submit_many([s.next_reading() for s in sims])  # never seen: one lookup, waited
    assert lookups == [("intake", 2)]
    node.asking = "refresh"
    world.clock.now += 0.5
    service.refresh()  # 1.5 s to go: not yet
    assert lookups == [("intake", 2)]
    world.clock.now += 0.6
    service.refresh()  # within half a period of their expiry: both re-read at once
    assert lookups == [("intake", 2), ("refresh", 2)]
    node.asking = "intake"
    world.clock.now += 1.0  # past the first records' expiry, not the refreshed ones'
    service.submit_many([s.next_reading() for s in sims])
    assert lookups == [("intake", 2), ("refresh", 2)]  # intake did not wait for the node
    world.clock.now += 10  # expired, and no refresh ran: waited for again
    service.submit(sims[0].next_reading())
    assert lookups[-1] == ("intake", 2)  # the other, expired too, read with it
    assert service.pending_count == 5


def test_a_device_whose_strikes_were_reported_is_read_again(world: World) -> None:  # noqa: F811
    """Its record is cached for a minute, yet the restriction its strikes earned on chain
    holds from its next reading: a reported device's record is read again."""
    sim = world.device()
    service = world.service(ReadingIndex(":memory:"), device_cache_ms=60_000)
    first = sim.next_reading()
    service.submit(first)
    stale = sign_reading(sim.keys, 0, first.reading.timestamp_ms + 1, first.reading.observation)
    nonconforming = sign_reading(sim.keys, 7, 1, b'{"resourceType":"Patient"}')
    answers = service.submit_many([stale, nonconforming])
    assert [a.code for a in answers if isinstance(a, ReadingRefused)] == [
        "replayed",
        "non_conforming",
    ]
    service.flush()  # two strikes: restricted on chain (PARAMS)
    device = world.chain.device(sim.keys.address)
    assert device is not None and device.state_at(world.chain.height) is DeviceState.RESTRICTED
    (refused,) = service.submit_many([sim.next_reading()])
    assert isinstance(refused, ReadingRefused) and refused.code == "device_restricted"


def test_while_a_refresh_is_under_way_a_late_record_serves(world: World) -> None:  # noqa: F811
    """A busy node's answer time does not hold up intake: while the refresh waits for
    the node, a record up to two periods late serves; later than that, it is waited for."""
    sim = world.device()
    address = sim.keys.address
    chain = world.chain
    answer = (chain.height, [chain.device(address)])  # read here: the chain is bound to us
    asked = threading.Event()
    gate = threading.Event()
    lookups: list[str] = []

    class SlowNode:
        """The chain's device lookup, held up until `gate` opens once the refresh asks."""

        def __getattr__(self, name: str) -> Any:
            return getattr(chain, name)

        def devices(self, addresses: list[bytes]) -> Any:
            lookups.append(threading.current_thread().name)
            if threading.current_thread() is not threading.main_thread():
                asked.set()
                assert gate.wait(60)
            return answer

    service = world.service(ReadingIndex(":memory:"), device_cache_ms=2_000)
    service.admission.chain = SlowNode()  # type: ignore[assignment]
    service.submit(sim.next_reading())  # never seen: waited for
    world.clock.now += 1.5  # within half a period of expiry
    refresh = threading.Thread(target=service.refresh, name="refresh")
    refresh.start()
    try:
        assert asked.wait(60)
        world.clock.now += 2.0  # expired while the node takes its time
        service.submit(sim.next_reading())
        assert lookups == [threading.current_thread().name, "refresh"]  # not waited for
    finally:
        gate.set()
        refresh.join(60)
    world.clock.now += 10  # later than two periods, no refresh under way: waited for
    service.submit(sim.next_reading())
    assert lookups[-1] == threading.current_thread().name and len(lookups) == 3
