"""Admission: signatures verified in the workers, transactions added on the loop in the
order their source sent them, and each source paying with its budget for the
verification work of what it sent that was not admitted."""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from medchain.app import (
    RING_MEMBER_COST,
    InvalidSignature,
    MalformedTx,
    NonceGap,
    TransferArgs,
    run_checks,
)
from medchain.crypto import AccountKeys, signed_tx
from medchain.node import (
    AdmissionConfig,
    LedgerApp,
    RateLimited,
    TooManyAnonymous,
    VerifierBusy,
    _admission,
    _verifier,
)
from medchain.node._admission import INLINE_TXS, NODE, Admission, Source
from medchain.node._verifier import Verifier
from medchain.types import (
    Allocation,
    ChainParams,
    Genesis,
    GenesisValidator,
    MedchainError,
    Tx,
    tx_id,
)
from tests.waiting import until

CHAIN = "medchain-admission"
VALIDATOR = AccountKeys.generate()
RICH = AccountKeys.generate()
SINK = b"\x05" * 20
CLIENT = Source.client("192.0.2.1")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def _app() -> LedgerApp:
    genesis = Genesis(
        CHAIN,
        0,
        ChainParams(),
        (Allocation(RICH.address, 10**9),),
        (GenesisValidator(VALIDATOR.public_key, "v0"),),
    )
    return LedgerApp(genesis)


def _transfer(keys: AccountKeys, nonce: int) -> Tx:
    return signed_tx(keys, CHAIN, nonce, "accounts.transfer", TransferArgs(SINK, 1))


def _forged(nonce: int = 0) -> Tx:
    tx = _transfer(AccountKeys.generate(), nonce)
    return dataclasses.replace(tx, signature=_transfer(RICH, nonce).signature)


def _run(scenario: Callable[[Admission, LedgerApp, Clock], Awaitable[None]], **config: Any) -> None:
    async def main() -> None:
        app = _app()
        clock = Clock()
        verifier = Verifier(app.signatures, workers=1)
        settings = AdmissionConfig(**{"client_rate": 100, "client_burst": 1_000, **config})
        try:
            await scenario(Admission(app.mempool, verifier, settings, clock=clock), app, clock)
        finally:
            await verifier.close()

    asyncio.run(main())


def test_signatures_are_verified_in_a_worker_and_admitted_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    threads: list[int] = []

    def recording(checks: list[Any]) -> list[bool]:
        threads.append(threading.get_ident())
        return run_checks(checks)

    monkeypatch.setattr(_verifier, "run_checks", recording)
    monkeypatch.setattr(_admission, "INLINE_TXS", 0)  # a batch as large as any

    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        txs = [_transfer(RICH, n) for n in range(5)]
        results = await admission.admit([*txs, txs[0], _forged()], CLIENT)
        assert results[:5] == [True] * 5
        assert results[5] is False  # the same transaction again: already pending
        assert isinstance(results[6], InvalidSignature)
        assert app.pending() == tuple(txs)
        assert threads and threading.get_ident() not in threads
        assert admission.stats.signatures_failed == 1

    _run(scenario)


def test_a_source_pays_for_what_it_sent_that_was_not_admitted() -> None:
    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        honest = [_transfer(RICH, n) for n in range(50)]
        assert all(r is True for r in await admission.admit(honest, CLIENT))
        assert admission.clients.bucket(CLIENT.key).full  # admitted work is given back
        forgeries = [_forged() for _ in range(1_200)]
        results = await admission.admit(forgeries, CLIENT)
        assert all(isinstance(r, InvalidSignature) for r in results)
        assert admission.stats.work_units_charged == 1_200
        with pytest.raises(RateLimited, match="retry in 3 s") as limited:
            await admission.admit([_transfer(RICH, 50)], CLIENT)  # even an honest one
        assert limited.value.retry_after_s == 3  # 200 units overdrawn at 100 a second
        assert admission.wait_s(CLIENT) == pytest.approx(2.01)
        other = Source.client("192.0.2.2")
        assert await admission.admit([_transfer(RICH, 50)], other) == [True]
        clock.now += 2.5
        assert await admission.admit([_transfer(RICH, 51)], CLIENT) == [True]
        assert admission.stats.clients_rate_limited == 1

    _run(scenario)


def test_a_signature_found_good_but_the_tx_refused_is_still_paid_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In a batch checked by the workers, a valid signature on a transaction that is
    never admitted (a gap nothing fills) is work done for nothing, as a forgery is.
    (Checked on the loop, such a gap is refused before its signature is checked.)"""
    monkeypatch.setattr(_admission, "INLINE_TXS", 0)

    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        gaps = [_transfer(AccountKeys.generate(), 7) for _ in range(20)]
        results = await admission.admit(gaps, CLIENT)
        assert all(isinstance(r, NonceGap) for r in results)
        assert admission.stats.work_units_charged == 20
        again = await admission.admit(gaps, CLIENT)  # verified: the cache remembers
        assert all(isinstance(r, NonceGap) for r in again)
        assert admission.stats.work_units_charged == 20

    _run(scenario)


def test_a_sources_requests_are_added_in_the_order_it_sent_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_admission, "INLINE_TXS", 0)  # every request to the workers
    """The first request's checks are held in the worker while the second's are done:
    the second still waits, or its nonces would show a gap."""
    release = threading.Event()
    held: list[bool] = []

    def slow_first(checks: list[Any]) -> list[bool]:
        if not held:
            held.append(True)
            release.wait(30)
        return run_checks(checks)

    monkeypatch.setattr(_verifier, "run_checks", slow_first)

    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        admission.verifier = Verifier(app.signatures, workers=2)
        first = asyncio.ensure_future(
            admission.admit([_transfer(RICH, n) for n in range(3)], CLIENT)
        )
        later = [_transfer(RICH, n) for n in range(3, 6)]
        second = asyncio.ensure_future(admission.admit(later, CLIENT))
        await until(lambda: all(tx_id(tx) in app.signatures for tx in later), what="checks")
        await asyncio.sleep(0)  # one loop turn for the second to finish, if it could
        assert not second.done()  # verified, but waiting for the first to be added
        release.set()
        assert await first == [True] * 3 and await second == [True] * 3
        assert [tx.nonce for tx in app.pending()] == list(range(6))
        await admission.verifier.close()

    _run(scenario)


def test_clients_are_asked_to_wait_while_the_workers_are_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_admission, "INLINE_TXS", 0)
    release = threading.Event()

    def held(checks: list[Any]) -> list[bool]:
        release.wait(30)
        return run_checks(checks)

    monkeypatch.setattr(_verifier, "run_checks", held)

    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        first = asyncio.ensure_future(admission.admit([_transfer(RICH, 0)], CLIENT))
        await until(lambda: admission.verifier.backlog == 1, what="the check queued")
        other = Source.client("192.0.2.9")
        with pytest.raises(VerifierBusy, match="retry"):
            await admission.admit([_transfer(RICH, 1)], other)
        peer_task = asyncio.ensure_future(
            admission.admit([_transfer(RICH, 1)], Source.peer("node1"))
        )
        node_task = asyncio.ensure_future(admission.admit([_transfer(RICH, 2)], NODE))
        release.set()
        assert await first == [True]
        results: list[bool | MedchainError] = [*await peer_task, *await node_task]
        assert results == [True, True]  # peers and the node itself are not turned away
        assert admission.stats.clients_busy == 1

    _run(scenario, max_backlog=1)


def test_a_peers_frames_are_refused_while_its_budget_is_overdrawn() -> None:
    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        peer = Source.peer("node3")
        await admission.admit([_forged() for _ in range(30)], peer)
        with pytest.raises(RateLimited):
            await admission.admit([_transfer(RICH, 0)], peer)
        assert admission.stats.peer_frames_dropped == 1
        assert await admission.admit([_transfer(RICH, 0)], NODE) == [True]  # no budget

    _run(scenario, peer_rate=10, peer_burst=20)


def test_a_client_request_holds_a_bounded_number_of_anonymous_transactions() -> None:
    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        junk = [Tx(CHAIN, 0, b"", 0, "anon.submit", b"\xc0", bytes([i])) for i in range(3)]
        with pytest.raises(
            TooManyAnonymous, match="holds 3 anonymous transactions, one may hold 2"
        ):
            await admission.admit([_transfer(RICH, 0), *junk], CLIENT)
        assert app.pending() == ()  # refused whole, before anything is admitted
        charged = 3 * 64 * RING_MEMBER_COST  # as if every ring were checked, at 64 members
        assert admission.stats.work_units_charged == charged
        with pytest.raises(RateLimited):  # sent again, it is turned away unread
            await admission.admit(junk, CLIENT)
        results = await admission.admit(junk[:2], Source.peer("node1"))  # peers: no cap
        assert all(isinstance(r, MalformedTx) for r in results)

    _run(scenario, max_anonymous_per_request=2)


def test_a_few_signed_transactions_are_checked_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Handing a few Ed25519 checks to a worker and back costs the loop more than doing
    them; rings and large batches go to the workers."""
    ran: list[int] = []

    def recording(checks: list[Any]) -> list[bool]:
        ran.append(len(checks))
        return run_checks(checks)

    monkeypatch.setattr(_verifier, "run_checks", recording)

    async def scenario(admission: Admission, app: LedgerApp, clock: Clock) -> None:
        few = [_transfer(RICH, n) for n in range(INLINE_TXS - 1)]
        results = await admission.admit([*few, _forged()], CLIENT)
        assert results[:-1] == [True] * len(few) and isinstance(results[-1], InvalidSignature)
        assert ran == []  # no worker involved
        assert admission.stats.work_units_charged == 1  # the forgery is charged all the same
        many = [_transfer(RICH, n) for n in range(len(few), len(few) + INLINE_TXS + 1)]
        assert all(r is True for r in await admission.admit(many, CLIENT))
        assert sum(ran) == INLINE_TXS + 1
        await admission.admit([_forged() for _ in range(600)], CLIENT)  # half its budget
        clock.now += 1  # refilled enough to be let in again, not to be trusted again
        ran.clear()
        assert await admission.admit([_transfer(RICH, 2 * INLINE_TXS)], CLIENT) == [True]
        assert ran == [1]  # to the workers, however small the request

    _run(scenario)
