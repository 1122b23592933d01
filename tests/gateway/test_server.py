"""The gateway's HTTP app over httpx's ASGI transport, on a LocalChain."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from medchain.app import PurposeOfUse, Role
from medchain.client import MedchainClient, ReadAuth
from medchain.crypto import AccountKeys, format_address, sign_read_request
from medchain.gateway import (
    CheckedReading,
    DeviceKind,
    SignedReading,
    SimulatedDevice,
    check_reading,
    reading_to_json,
    sign_reading,
    verify_proof,
)
from medchain.gateway._index import ReadingIndex
from medchain.gateway._memory import memory_upkeep
from medchain.gateway._reading_access import ACCESS_CACHE_S
from medchain.gateway._server import (
    GroupedIntake,
    create_gateway_app,
    flush_batches,
    make_call,
    refresh_loop,
    upkeep_loop,
)
from medchain.gateway._service import Accepted, GatewayService, ReadingRefused
from medchain.node import DISCLOSURES_FILE, SqliteDisclosureLog
from medchain.types import MedchainError, entry_hash, heads_of
from tests.api.harness import SyncASGITransport
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)


def _as(world: World, keys: AccountKeys) -> httpx.Auth:  # noqa: F811
    return ReadAuth(keys, world.chain.chain_id, PurposeOfUse.OPERATIONS)


def test_http_readings(world: World) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    app = create_gateway_app(service, background=False, threads=False)
    sim = world.device()
    first = sim.next_reading()
    device = _as(world, sim.keys)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            assert (await http.get("/v1/health")).json()["ok"]
            r = await http.post("/v1/readings", content=reading_to_json(first))
            assert r.status_code == 202
            rid = r.json()["id"]
            pending = await http.get(f"/v1/readings/{rid}", auth=device)
            assert pending.json()["status"] == "pending"
            batch = [json.loads(reading_to_json(sim.next_reading())) for _ in range(2)]
            r = await http.post("/v1/readings", json=batch)
            assert r.status_code == 207 and all(x["accepted"] for x in r.json()["results"])
            forged = SignedReading(sim.next_reading().reading, b"\x00" * 64)
            r = await http.post("/v1/readings", content=reading_to_json(forged))
            assert r.status_code == 401 and r.json()["error"] == "bad_signature"
            stale = sign_reading(sim.keys, 0, 5, first.reading.observation)
            r = await http.post("/v1/readings", content=reading_to_json(stale))
            assert r.status_code == 409
            r = await http.post("/v1/readings", content=b"{nope")
            assert r.status_code == 400
            service.flush()
            body = (await http.get(f"/v1/readings/{rid}", auth=device)).json()
            assert body["status"] == "committed"
            assert body["device"] == sim.keys.address_text
            assert body["patient"] == format_address(world.patient.address)
            on_chain = world.chain.batch(bytes.fromhex(body["batch"]))
            assert on_chain is not None and body["proof"]["root"] == on_chain.root.hex()
            status = service.status(bytes.fromhex(rid)).committed
            assert status is not None and verify_proof(status.proof, on_chain.root)
            unknown = await http.get("/v1/readings/" + "00" * 32, auth=device)
            assert unknown.status_code == 404

    asyncio.run(run())


class _Reads:
    """A gateway app whose readings' statuses are asked for in process, signed or not."""

    def __init__(self, world: World, service: GatewayService) -> None:  # noqa: F811
        self.world = world
        self.http = httpx.Client(
            transport=SyncASGITransport(
                create_gateway_app(service, background=False, threads=False)
            ),
            base_url="http://gw",
        )

    def get(self, rid: bytes, keys: AccountKeys | None = None, **headers: str) -> httpx.Response:
        auth = _as(self.world, keys) if keys is not None else None
        return self.http.get(f"/v1/readings/{rid.hex()}", auth=auth, headers=headers or None)


def _committed_reading(world: World, service: GatewayService) -> tuple[bytes, AccountKeys]:  # noqa: F811
    """A reading of the world's patient, committed; and its device's key."""
    sim = world.device()
    rid = service.submit(sim.next_reading()).reading_id
    service.flush()
    return rid, sim.keys


def _registered(world: World) -> MedchainClient:  # noqa: F811
    person = MedchainClient(AccountKeys.generate(), world.chain)
    person.register(Role.PATIENT, "someone")
    return person


def test_a_reading_is_told_only_to_a_signed_read_by_someone_allowed(
    world: World,  # noqa: F811
    tmp_path: Path,
) -> None:
    log = SqliteDisclosureLog(tmp_path / DISCLOSURES_FILE, world.gateway_keys.address)
    service = world.service(ReadingIndex(":memory:"), disclosures=log)
    reads = _Reads(world, service)
    rid, device = _committed_reading(world, service)
    reader, stranger = _registered(world), _registered(world)
    world.patient.share_vitals(reader.address)

    unsigned = reads.get(rid)
    assert unsigned.status_code == 401 and unsigned.json()["error"] == "read_unsigned"
    assert unsigned.headers["www-authenticate"] == "Medchain-Read"
    other_path = sign_read_request(
        world.patient.keys, world.chain.chain_id, "GET", "/v1/readings/" + "00" * 32,
        time.time_ns() // 1_000_000, "PATRQT",
    )  # fmt: skip
    assert reads.get(rid, authorization=other_path).status_code == 401
    stale = sign_read_request(
        world.patient.keys, world.chain.chain_id, "GET", f"/v1/readings/{rid.hex()}",
        time.time_ns() // 1_000_000 - 120_000, "PATRQT",
    )  # fmt: skip
    assert "behind" in reads.get(rid, authorization=stale).json()["message"]
    refused = reads.get(rid, stranger.keys)
    assert refused.status_code == 403 and refused.json()["error"] == "read_not_authorised"
    assert "share-vitals" in refused.json()["message"]

    asked = [device, world.patient.keys, world.guardian.keys, reader.keys]
    for keys in asked:
        answer = reads.get(rid, keys)
        assert answer.status_code == 200, answer.text
        assert answer.json()["proof"]["tree_size"] >= 1

    assert log.flush(60)
    entries = log.entries_of(world.patient.address)
    assert [e.entry.disclosure.reader for e in entries] == [k.address for k in asked]
    assert [e.entry.disclosure.basis.value for e in entries] == [
        "device", "owner", "proxy", "vitals_reader",
    ]  # fmt: skip
    assert all(e.entry.node == world.gateway_keys.address for e in entries)
    assert all(rid.hex() in e.entry.disclosure.detail for e in entries)
    heads = heads_of(entry_hash(e.entry) for e in log.written())
    assert [e.head for e in log.written()] == heads
    assert log.disagreement([(len(heads), heads[-1])]) == 0
    log.close()


def test_a_revoked_vitals_reader_is_refused_once_the_cache_lapses(world: World) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    reads = _Reads(world, service)
    rid, _ = _committed_reading(world, service)
    reader = _registered(world)
    world.patient.share_vitals(reader.address)
    assert reads.get(rid, reader.keys).status_code == 200
    world.patient.unshare_vitals(reader.address)
    world.clock.now += ACCESS_CACHE_S  # the bound on serving a revoked reader
    refused = reads.get(rid, reader.keys)
    assert refused.status_code == 403, refused.text
    assert len(service.disclosures.entries) == 1  # type: ignore[attr-defined]


def test_a_pending_reading_is_told_only_to_its_device(world: World) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    reads = _Reads(world, service)
    sim = world.device()
    rid = service.submit(sim.next_reading()).reading_id
    refused = reads.get(rid, world.patient.keys)
    assert refused.status_code == 403 and "not committed yet" in refused.json()["message"]
    assert reads.get(rid, sim.keys).json() == {"id": rid.hex(), "status": "pending"}
    (logged,) = service.disclosures.entries  # type: ignore[attr-defined]
    assert (logged.reader, logged.patient) == (sim.keys.address, world.patient.address)
    assert "pending" in logged.detail


def _checked(readings: list[SignedReading], delay_s: float = 0) -> asyncio.Future[list[Any]]:
    """A request's readings, checked after `delay_s` (as an intake worker would)."""

    async def check() -> list[Any]:
        await asyncio.sleep(delay_s)  # a worker's check taking this long (the behaviour)
        return [check_reading(r) for r in readings]

    return asyncio.ensure_future(check())


def test_concurrent_requests_are_decided_together_in_arrival_order() -> None:
    sim = SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)), seed=3)
    readings = [sim.next_reading() for _ in range(30)]
    groups: list[list[int]] = []

    class Recording:
        def submit_checked(self, checked: list[CheckedReading]) -> list[Accepted]:
            time.sleep(0.01)  # a slow service: requests pile up meanwhile
            groups.append([c.signed.reading.sequence for c in checked])
            return [Accepted(c.signed.reading_id) for c in checked]

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    intake = GroupedIntake(Recording(), call)  # type: ignore[arg-type]

    async def main() -> list[list[Accepted | ReadingRefused]]:
        async def request(i: int) -> list[Accepted | ReadingRefused]:
            await asyncio.sleep(i * 0.001)  # the requests arrive in this order
            # later requests' checks finish first, as with several intake workers
            return await intake.submit(_checked(readings[3 * i : 3 * i + 3], (10 - i) * 0.003))

        return await asyncio.gather(*(request(i) for i in range(10)))

    answers = asyncio.run(main())
    assert [a.reading_id for group in answers for a in group] == [  # type: ignore[union-attr]
        r.reading_id for r in readings
    ]
    assert [seq for g in groups for seq in g] == list(range(30))
    assert len(groups) < 10  # merged


def test_a_failing_group_fails_every_request_in_it() -> None:
    class Down:
        def submit_checked(self, checked: list[CheckedReading]) -> list[Accepted]:
            raise MedchainError("the node at http://127.0.0.1:1 did not answer")

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    intake = GroupedIntake(Down(), call)  # type: ignore[arg-type]
    sim = SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)), seed=4)

    async def main() -> None:
        with pytest.raises(MedchainError, match="did not answer"):
            await intake.submit(_checked([sim.next_reading()]))
        with pytest.raises(MedchainError):  # and the next request is tried again
            await intake.submit(_checked([sim.next_reading()]))

    asyncio.run(main())


def test_a_request_whose_check_failed_hears_why_and_the_others_go_on() -> None:
    class Recording:
        def submit_checked(self, checked: list[CheckedReading]) -> list[Accepted]:
            return [Accepted(c.signed.reading_id) for c in checked]

    async def call(fn: Callable[..., Any], *args: Any) -> Any:
        return fn(*args)

    intake = GroupedIntake(Recording(), call)  # type: ignore[arg-type]
    sim = SimulatedDevice(DeviceKind.THERMOMETER, format_address(bytes(20)), seed=5)
    good = sim.next_reading()

    async def broken() -> list[Any]:
        raise MedchainError("an intake worker of the gateway stopped")

    async def main() -> None:
        failing = intake.submit(asyncio.ensure_future(broken()))
        passing = intake.submit(_checked([good]))
        results = await asyncio.gather(failing, passing, return_exceptions=True)
        assert isinstance(results[0], MedchainError) and "stopped" in results[0].message
        assert results[1] == [Accepted(good.reading_id)]

    asyncio.run(main())
    asyncio.run(main())


class _Batches:
    """A service's batch steps, recorded: `count` batches to prepare and commit."""

    def __init__(self, count: int, failing: int | None = None) -> None:
        self.left = list(range(1, count + 1))
        self.failing = failing
        self.steps: list[str] = []
        self.released: list[Any] = []
        self.second_prepared = threading.Event()

    def report_strikes(self) -> None:
        self.steps.append("strikes")

    def prepare(self) -> Any:
        if not self.left:
            return None
        n = self.left.pop(0)
        self.steps.append(f"prepare {n}")
        if n == 2:
            self.second_prepared.set()
        return SimpleNamespace(n=n, batch=SimpleNamespace(entries=[f"reading {n}"]))

    def commit(self, prepared: Any) -> bytes:
        if prepared.n == self.failing:
            raise MedchainError("the node did not answer")
        self.steps.append(f"commit {prepared.n}")
        return bytes([prepared.n])

    def release(self, entries: Any) -> None:
        self.released.append(entries)


def test_the_next_batch_is_prepared_while_one_commits() -> None:
    batches = _Batches(2)
    commit = batches.commit

    def commit_once_the_next_is_prepared(prepared: Any) -> bytes:
        if prepared.n == 1:  # made one after the other, this would wait in vain
            assert batches.second_prepared.wait(60)
        return commit(prepared)

    batches.commit = commit_once_the_next_is_prepared  # type: ignore[method-assign]
    ids = asyncio.run(flush_batches(batches, make_call(threads=True)))  # type: ignore[arg-type]
    assert ids == [b"\x01", b"\x02"]
    assert batches.steps.index("prepare 2") < batches.steps.index("commit 1")


def test_inline_the_batch_steps_run_in_flush_order() -> None:
    batches = _Batches(2)
    ids = asyncio.run(flush_batches(batches, make_call(threads=False)))  # type: ignore[arg-type]
    assert ids == [b"\x01", b"\x02"]
    assert batches.steps == [
        "strikes",
        "prepare 1",
        "commit 1",
        "strikes",
        "prepare 2",
        "commit 2",
        "strikes",
    ]


def test_a_batch_that_fails_puts_back_the_one_prepared_meanwhile() -> None:
    batches = _Batches(3, failing=1)
    with pytest.raises(MedchainError, match="did not answer"):
        asyncio.run(flush_batches(batches, make_call(threads=True)))  # type: ignore[arg-type]
    assert batches.released == [["reading 2"]]
    assert "commit 2" not in batches.steps and batches.left == [3]


def test_the_upkeep_loop_collects_and_hands_memory_back_until_stopped() -> None:
    calls: list[Callable[..., Any]] = []

    async def main() -> None:
        stop = asyncio.Event()

        async def call(fn: Callable[..., Any], *args: Any) -> Any:
            calls.append(fn)
            if len(calls) == 3:
                stop.set()
            return fn(*args)

        await upkeep_loop(call, stop, period_s=0.001)

    asyncio.run(main())
    assert calls == [memory_upkeep] * 3


def test_the_refresh_loop_goes_on_after_a_failure_until_stopped() -> None:
    calls: list[int] = []

    async def main() -> None:
        stop = asyncio.Event()

        class Service:
            def refresh(self) -> None:
                calls.append(len(calls))
                if len(calls) == 1:
                    raise MedchainError("the node did not answer")
                if len(calls) == 3:
                    stop.set()

        await refresh_loop(Service(), make_call(threads=False), stop, period_s=0.001)  # type: ignore[arg-type]

    asyncio.run(main())
    assert calls == [0, 1, 2]
