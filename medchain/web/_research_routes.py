"""A research organisation's pages: the de-identified copies it holds, counted by type,
and their download as FHIR NDJSON (a GET: it changes nothing, and the guard's session
cookie keeps it to the local user)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from medchain.client import MedchainClient
from medchain.web._pages import Site, page_number
from medchain.web._research import export_ndjson, holdings

NDJSON = "application/fhir+ndjson"
EXPORT_PATH = "/research/export.ndjson"


def research_routes(site: Site, client: MedchainClient) -> list[Route]:
    async def home(request: Request) -> Response:
        page = page_number(request)
        found = await site.worker.run(lambda: holdings(client, page))
        return site.page(request, "research.html", holdings=found, export=EXPORT_PATH)

    async def export(_: Request) -> Response:
        body = await site.worker.run(lambda: export_ndjson(client))
        disposition = 'attachment; filename="research-export.ndjson"'
        return Response(body, media_type=NDJSON, headers={"content-disposition": disposition})

    return [Route("/", home), Route(EXPORT_PATH, export)]
