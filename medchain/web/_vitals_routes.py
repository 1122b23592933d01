"""The vitals sharing page: who reads the patient's vitals, a reader granted by name
from the directory and one revoked, with plain forms. Only the patient shares their
vitals (the chain takes the sender as the patient), so a proxy sees the list only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.client import MedchainClient
from medchain.crypto import parse_address
from medchain.types import MedchainError
from medchain.web._pages import Site
from medchain.web._patient_routes import whose
from medchain.web._routing import refusal_status, shows_errors
from medchain.web._vitals_sharing import vitals_sharing

DONE = {
    "shared": "Shared: gateways seal your readings for them from their next batch on.",
    "stopped": "Stopped: readings committed from now on are not sealed for them.",
}


def vitals_routes(site: Site, client: MedchainClient) -> list[Route]:
    run = site.worker.run

    async def show(request: Request, status: int = 200, **context: str) -> Response:
        patient, who = await whose(site, client, request)
        query = request.query_params.get("q", "")
        found = await run(lambda: vitals_sharing(client, patient, query))
        return site.page(
            request, "vitals_sharing.html", status, found=found, patient=who, **context
        )

    async def sharing(request: Request) -> Response:
        return await show(request, flash=DONE.get(request.query_params.get("done", ""), ""))

    async def change(request: Request) -> Response:
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        reader = parse_address(form.get("reader", ""))
        sharing = request.url.path.endswith("/add")
        try:
            await run(lambda: (client.share_vitals if sharing else client.unshare_vitals)(reader))
        except MedchainError as exc:
            return await show(request, refusal_status(exc), failure=exc.message)
        done = "shared" if sharing else "stopped"
        return RedirectResponse(f"/vitals/readers?done={done}", status_code=303)

    return [
        Route("/vitals/readers", shows_errors(site, sharing)),
        Route("/vitals/readers/add", shows_errors(site, change), methods=["POST"]),
        Route("/vitals/readers/remove", shows_errors(site, change), methods=["POST"]),
    ]
