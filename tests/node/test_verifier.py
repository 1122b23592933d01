"""The verifier runs signature checks in worker threads and records them on the loop:
passes in the signature cache, failures remembered, a check asked for twice run once."""

from __future__ import annotations

import asyncio
import threading

import pytest

from medchain.app import SignatureCache, SignatureCheck, run_checks
from medchain.crypto import AccountKeys
from medchain.node import _verifier
from medchain.node._verifier import Verifier
from tests.waiting import until

KEYS = AccountKeys.generate()


def _check(message: bytes, forged: bool = False) -> SignatureCheck:
    signature = KEYS.sign(message)
    if forged:
        signature = KEYS.sign(message + b"!")
    return SignatureCheck(b"key:" + message, message, signature, KEYS.public_key)


class Workers:
    """run_checks as the workers call it: records who ran what, and can be held."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.threads: list[int] = []
        self.ran: list[bytes] = []
        self.release = threading.Event()
        self.release.set()
        self.started = threading.Event()
        monkeypatch.setattr(_verifier, "run_checks", self)

    def __call__(self, checks: list[SignatureCheck]) -> list[bool]:
        self.threads.append(threading.get_ident())
        self.ran += [check.key for check in checks]
        self.started.set()
        self.release.wait(30)
        return run_checks(checks)


def test_checks_run_in_a_worker_and_outcomes_are_recorded_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    workers = Workers(monkeypatch)

    async def scenario() -> None:
        cache = SignatureCache()
        verifier = Verifier(cache, workers=2, chunk_cost=2)
        good, bad, other = _check(b"a"), _check(b"b", forged=True), _check(b"c")
        assert await verifier.verify([good, bad, other]) == [True, False, True]
        assert threading.get_ident() not in workers.threads
        assert len(workers.threads) == 2  # in chunks of two units
        assert good.key in cache and other.key in cache and bad.key not in cache
        assert verifier.outcome(bad) is False and verifier.outcome(good) is True
        assert verifier.verified_units == 2 and verifier.failed_units == 1
        workers.ran.clear()
        assert await verifier.verify([bad, good]) == [False, True]
        assert workers.ran == []  # both known: nothing runs again
        await verifier.close()

    asyncio.run(scenario())


def test_a_check_asked_for_while_it_runs_runs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    workers = Workers(monkeypatch)
    workers.release.clear()

    async def scenario() -> None:
        verifier = Verifier(SignatureCache(), workers=1)
        check = _check(b"gossiped and proposed at once")
        first = asyncio.ensure_future(verifier.verify([check]))
        await asyncio.to_thread(workers.started.wait, 30)
        assert verifier.backlog == check.cost
        second = asyncio.ensure_future(verifier.verify([check]))
        await asyncio.sleep(0)  # one loop turn: the second asker joins the running check
        first.cancel()  # the first asker gives up: the check still completes
        workers.release.set()
        assert await second == [True]
        assert workers.ran == [check.key] and verifier.backlog == 0
        await verifier.close()

    asyncio.run(scenario())


def test_the_workers_take_the_sources_in_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of one source's checks does not hold back another source's one check."""
    workers = Workers(monkeypatch)
    workers.release.clear()

    async def scenario() -> None:
        verifier = Verifier(SignatureCache(), workers=1, chunk_cost=1)
        flood = [_check(b"forged %d" % i, forged=True) for i in range(5)]
        honest = _check(b"a transfer")
        flooding = asyncio.ensure_future(verifier.verify(flood, "client:192.0.2.66"))
        await asyncio.to_thread(workers.started.wait, 30)  # the first chunk is running
        assert verifier.backlog == 5
        asking = asyncio.ensure_future(verifier.verify([honest], "client:192.0.2.7"))
        await asyncio.sleep(0)  # one loop turn: the honest check is queued
        workers.release.set()
        assert await asking == [True] and await flooding == [False] * 5
        assert workers.ran.index(honest.key) == 1  # right after the chunk that was running
        assert verifier.backlog == 0
        await verifier.close()

    asyncio.run(scenario())


def test_urgent_checks_go_first_even_those_already_queued(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proposal's checks do not wait behind a backlog of gossip, even a check that
    gossip queued first: it runs urgently, and the gossip's wait for it ends too."""
    workers = Workers(monkeypatch)
    workers.release.clear()

    async def scenario() -> None:
        verifier = Verifier(SignatureCache(), workers=1, chunk_cost=1)
        gossip = [_check(b"gossiped %d" % i) for i in range(4)]
        gossiping = asyncio.ensure_future(verifier.verify(gossip, "peer:node2"))
        await asyncio.to_thread(workers.started.wait, 30)  # the first chunk is running
        proposed = asyncio.ensure_future(verifier.verify(gossip[3:], "peer:node1", urgent=True))
        await asyncio.sleep(0)  # one loop turn: the urgent check is queued
        workers.release.set()
        assert await proposed == [True] and await gossiping == [True] * 4
        assert workers.ran.index(gossip[3].key) == 1  # right after the running chunk
        await until(lambda: verifier.backlog == 0, what="gossip's turn")
        assert workers.ran.count(gossip[3].key) == 1  # not run again in gossip's turn
        await verifier.close()

    asyncio.run(scenario())
