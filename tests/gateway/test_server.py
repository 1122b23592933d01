"""The gateway's HTTP app over httpx's ASGI transport, on a LocalChain."""

from __future__ import annotations

import asyncio
import json

import httpx

from medchain.gateway import SignedReading, reading_to_json, sign_reading, verify_proof
from medchain.gateway._index import ReadingIndex
from medchain.gateway._server import create_gateway_app
from tests.gateway.test_service import World, world  # noqa: F401  (the fixture)


def test_http_readings(world: World) -> None:  # noqa: F811
    service = world.service(ReadingIndex(":memory:"))
    app = create_gateway_app(service, background=False, threads=False)
    sim = world.device()
    first = sim.next_reading()

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            assert (await http.get("/v1/health")).json()["ok"]
            r = await http.post("/v1/readings", content=reading_to_json(first))
            assert r.status_code == 202
            rid = r.json()["id"]
            assert (await http.get(f"/v1/readings/{rid}")).json()["status"] == "pending"
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
            body = (await http.get(f"/v1/readings/{rid}")).json()
            assert body["status"] == "committed"
            on_chain = world.chain.batch(bytes.fromhex(body["batch"]))
            assert on_chain is not None and body["proof"]["root"] == on_chain.root.hex()
            status = service.status(bytes.fromhex(rid)).committed
            assert status is not None and verify_proof(status.proof, on_chain.root)
            assert (await http.get("/v1/readings/" + "00" * 32)).status_code == 404

    asyncio.run(run())
