"""The explorer's pages and its live feed of new blocks (server-sent events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from medchain.app import Role
from medchain.types import Block
from medchain.web._explorer import (
    ExplorerChain,
    accounts_with,
    block_page,
    latest_blocks,
    overview,
    summary,
)
from medchain.web._explorer_fleet import GATEWAY_PAGE, fleet_view, gateway_rows
from medchain.web._mempool import mempool_view
from medchain.web._pages import Site, templates

POLL_S = 0.2
"""How often the feed looks for a new block: well inside the 2 s a page may lag."""
HEARTBEAT_S = 15.0
MAX_BLOCKS_PER_EVENT = 20


def explorer_routes(site: Site) -> list[Route]:
    chain: ExplorerChain = site.worker.backend

    async def home(request: Request) -> Response:
        info = await site.worker.run(lambda: overview(chain))
        blocks = await site.worker.run(lambda: latest_blocks(chain))
        fleet = await site.worker.run(lambda: fleet_view(chain))
        return site.page(request, "explorer.html", info=info, blocks=blocks, fleet=fleet)

    async def block(request: Request) -> Response:
        height = int(request.path_params["height"])
        found = await site.worker.run(lambda: block_page(chain, height))
        if found is None:
            return site.error(request, f"There is no block at height {height} yet.", 404)
        return site.page(request, "block.html", block=found)

    async def accounts(request: Request) -> Response:
        try:
            role = Role(request.query_params.get("role", Role.PATIENT.value))
            start = max(0, int(request.query_params.get("start", "0")))
        except ValueError:
            return site.error(request, "Choose a role from the list and a whole-number start.")
        total, rows = await site.worker.run(lambda: accounts_with(chain, role, start))
        return site.page(
            request, "accounts.html", role=role.value, roles=[r.value for r in Role],
            total=total, rows=rows, start=start,
        )  # fmt: skip

    async def gateways(request: Request) -> Response:
        text = request.query_params.get("start", "0")
        if not text.isdigit() or len(text) > 9:
            return site.error(request, "Give the start as a whole number of gateways.")
        start = int(text)
        total, rows = await site.worker.run(lambda: gateway_rows(chain, start, GATEWAY_PAGE))
        complete_from = await site.worker.run(lambda: chain.fleet_counts().complete_from)
        return site.page(
            request, "gateways.html", total=total, gateways=rows, start=start,
            page=GATEWAY_PAGE, complete_from=complete_from,
        )  # fmt: skip

    async def mempool(request: Request) -> Response:
        pool = await site.worker.run(lambda: mempool_view(chain))
        return site.page(request, "mempool.html", pool=pool)

    async def events(request: Request) -> Response:
        return StreamingResponse(
            _new_blocks(site, chain, request),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    return [
        Route("/", home),
        Route("/blocks/{height:int}", block),
        Route("/accounts", accounts),
        Route("/gateways", gateways),
        Route("/mempool", mempool),
        Route("/events", events),
    ]


def _after(request: Request) -> int | None:
    text = request.query_params.get("after", "")
    return int(text) if text.isdigit() and len(text) < 19 else None


async def _new_blocks(site: Site, chain: ExplorerChain, request: Request) -> AsyncIterator[str]:
    """`block` events, one per block committed after `?after=HEIGHT` (the height the page
    was drawn at: a block committed while the page loaded is not missed; by default the
    latest), as long as the page listens; after new blocks, a `fleet` event with the
    edge tier's section redrawn, when it differs from the one last sent."""
    latest_height = (await site.worker.run(chain.latest_block)).height
    after = _after(request)
    seen = latest_height if after is None else min(after, latest_height)
    quiet_s = 0.0
    fleet_sent = ""
    yield "retry: 1000\n\n"
    while not await request.is_disconnected():
        await asyncio.sleep(POLL_S)
        latest = await site.worker.run(chain.latest_block)
        if latest.height <= seen:
            quiet_s += POLL_S
            if quiet_s >= HEARTBEAT_S:
                quiet_s = 0.0
                yield ": still here\n\n"
            continue
        first = max(seen + 1, latest.height - MAX_BLOCKS_PER_EVENT + 1)
        for height in range(first, latest.height + 1):
            block = latest if height == latest.height else await _block_at(site, chain, height)
            if block is not None:
                yield f"event: block\ndata: {json.dumps(summary(block).as_json())}\n\n"
        seen, quiet_s = latest.height, 0.0
        fleet = await _fleet_html(site, chain)
        if fleet != fleet_sent:  # the first time: what changed since the page was drawn
            fleet_sent = fleet
            yield f"event: fleet\ndata: {json.dumps({'height': seen, 'html': fleet})}\n\n"


async def _fleet_html(site: Site, chain: ExplorerChain) -> str:
    view = await site.worker.run(lambda: fleet_view(chain))
    return templates.get_template("_fleet.html").render(fleet=view)


async def _block_at(site: Site, chain: ExplorerChain, height: int) -> Block | None:
    return await site.worker.run(lambda: chain.block_at(height))
