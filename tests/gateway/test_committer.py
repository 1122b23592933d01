"""The committer's readers: each patient's list is read from the chain once for all the
patients of a batch, cached, and re-read ahead of its expiry apart from the batches, so
a batch seldom waits for the node; a list expired is read before the batch is sealed.
(Batches committed and recorded are shown end to end in test_service.py.)"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from medchain.app import Role
from medchain.client import MedchainClient
from medchain.crypto import AccountKeys
from medchain.gateway._index import ReadingIndex
from medchain.types import MedchainError
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)


def test_readers_about_to_expire_are_refreshed_apart_from_a_batch(world: World) -> None:  # noqa: F811
    patient = world.patient.address
    (keys,) = world.chain.vitals_recipients([patient])
    assert keys is not None and set(keys) == {patient, world.guardian.address}
    calls: list[str] = []

    class CountingNode:
        """The chain's lists of readers, noting who asked: a batch or the refresh."""

        asking = "batch"

        def vitals_recipients(self, patients: list[bytes]) -> list[dict[bytes, bytes] | None]:
            calls.append(self.asking)
            return [keys for _ in patients]

    service = world.service(ReadingIndex(":memory:"), readers_cache_ms=10_000)
    node = CountingNode()
    service.committer.chain = node  # type: ignore[assignment]
    committer = service.committer
    assert committer.readers([patient]) == {patient: keys}  # never seen: read for the batch
    assert calls == ["batch"]
    node.asking = "refresh"
    world.clock.now += 4
    service.refresh()  # six seconds to go: not yet
    assert calls == ["batch"]
    world.clock.now += 2
    service.refresh()  # within half a period of its expiry: re-read
    assert calls == ["batch", "refresh"]
    node.asking = "batch"
    world.clock.now += 8  # past the first list's expiry, not the refreshed one's
    assert committer.readers([patient]) == {patient: keys}
    assert calls == ["batch", "refresh"]  # the batch did not wait for the node
    world.clock.now += 25  # expired, and no refresh ran: read for the batch
    assert committer.readers([patient]) == {patient: keys}
    assert calls == ["batch", "refresh", "batch"]


def test_many_patients_readers_are_read_in_one_lookup(world: World) -> None:  # noqa: F811
    """A batch of many patients, and the refresh of their expired lists, each ask the
    chain once, not once (or three times) per patient."""
    others = []
    for i in range(3):
        other = MedchainClient(AccountKeys.generate(), world.chain)
        other.register(Role.PATIENT, f"patient {i}")
        others.append(other.address)
    patients = [world.patient.address, *others]
    lookups: list[list[bytes]] = []
    chain = world.chain
    service = world.service(ReadingIndex(":memory:"), readers_cache_ms=10_000)

    class CountingChain:
        def __getattr__(self, name: str) -> Any:
            return getattr(chain, name)

        def vitals_recipients(self, asked: list[bytes]) -> list[dict[bytes, bytes] | None]:
            lookups.append(list(asked))
            return chain.vitals_recipients(asked)

    committer = service.committer
    committer.chain = CountingChain()  # type: ignore[assignment]
    readers = committer.readers([*patients, patients[0]])
    assert lookups == [patients] and list(readers) == patients
    assert set(readers[world.patient.address]) == {world.patient.address, world.guardian.address}
    world.clock.now += 11
    committer.refresh_readers()
    assert lookups[1] == patients
    assert committer.readers(patients) == readers and len(lookups) == 2  # cached again
    stranger = AccountKeys.generate().address  # not a patient: the batch cannot be sealed
    with pytest.raises(MedchainError, match="is not a patient on chain"):
        committer.readers([stranger])


def test_while_readers_are_refreshed_a_late_list_seals_the_batch(world: World) -> None:  # noqa: F811
    patient = world.patient.address
    (keys,) = world.chain.vitals_recipients([patient])
    asked = threading.Event()
    gate = threading.Event()
    calls: list[str] = []

    class SlowNode:
        """The chain's lists of readers, held up until `gate` opens once the refresh asks."""

        chain_id = world.chain.chain_id

        def vitals_recipients(self, patients: list[bytes]) -> list[dict[bytes, bytes] | None]:
            calls.append(threading.current_thread().name)
            if threading.current_thread() is not threading.main_thread():
                asked.set()
                assert gate.wait(60)
            return [keys for _ in patients]

    service = world.service(ReadingIndex(":memory:"), readers_cache_ms=10_000)
    committer = service.committer
    committer.chain = SlowNode()  # type: ignore[assignment]
    me = threading.current_thread().name
    assert committer.readers([patient]) == {patient: keys}  # never seen: waited for
    world.clock.now += 6  # within half a period of expiry
    refresh = threading.Thread(target=committer.refresh_readers, name="refresh")
    refresh.start()
    try:
        assert asked.wait(60)
        world.clock.now += 5  # expired while the node takes its time: the batch goes on
        assert committer.readers([patient]) == {patient: keys}
        assert calls == [me, "refresh"]
    finally:
        gate.set()
        refresh.join(60)
    world.clock.now += 25  # far too late, no refresh under way: waited for again
    committer.readers([patient])
    assert calls == [me, "refresh", me]
