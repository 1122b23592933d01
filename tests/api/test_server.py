"""ApiServer: uvicorn inside the caller's loop, on a free port, stopped cleanly."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest

from medchain.api import ApiServer, ApiServerError
from tests.api.harness import FakeNode, make_chain


def test_serves_in_the_running_loop_and_stops() -> None:
    async def main() -> None:
        server = ApiServer(FakeNode(make_chain()), port=0)
        await server.start()
        assert server.port != 0 and server.url == f"http://127.0.0.1:{server.port}"
        async with httpx.AsyncClient(base_url=server.url) as client:
            health = await client.get("/health")
            assert health.status_code == 200 and health.json()["status"] == "ok"
        await server.stop()
        with pytest.raises(httpx.ConnectError):
            async with httpx.AsyncClient(base_url=server.url) as client:
                await client.get("/health")

    asyncio.run(main())


def test_a_taken_port_is_a_clear_error() -> None:
    async def main() -> None:
        first = ApiServer(FakeNode(make_chain()), port=0)
        await first.start()
        second = ApiServer(FakeNode(make_chain()), port=first.port)
        with pytest.raises(ApiServerError, match=f"127.0.0.1:{first.port}.*another port"):
            await second.start()
        await first.stop()

    asyncio.run(main())


def test_connections_are_served_without_nagle_delays() -> None:
    """Each answer goes out at once (TCP_NODELAY): without it, every request on a
    kept-alive connection waited ~40 ms for the client's delayed ACK."""

    async def main() -> None:
        server = ApiServer(FakeNode(make_chain()), port=0)
        await server.start()
        async with httpx.AsyncClient(base_url=server.url) as client:
            assert (await client.get("/health")).status_code == 200
            connections = server._server.server_state.connections
            assert connections
            for protocol in connections:
                sock = protocol.transport.get_extra_info("socket")
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        await server.stop()

    asyncio.run(main())
