"""The key holder's pages: a patient's timeline and records, granting and revoking; a
clinician's patients and the vital-signs form. Every decryption and signature happens
here, in this process; the browser receives rendered pages."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.client import MedchainClient
from medchain.crypto import parse_address
from medchain.types import MedchainError
from medchain.web._clinician import keywords_for
from medchain.web._pages import Site, page_number
from medchain.web._records import directory, patients, record_page, timeline
from medchain.web._research_shares import research_shares
from medchain.web._routing import record_id_in, shows_errors
from medchain.web._vitals_form import VITAL_SIGNS, observation_from_form


def person_routes(site: Site, client: MedchainClient) -> list[Route]:
    run = site.worker.run

    async def home(request: Request) -> Response:
        if site.mode == "patient":
            found = await run(lambda: timeline(client, client.address, page_number(request)))
            return site.page(request, "timeline.html", timeline=found, patient=site.me)
        query = request.query_params.get("q", "")
        found_patients = await run(lambda: patients(client, query))
        return site.page(request, "patients.html", patients=found_patients, query=query)

    async def patient(request: Request) -> Response:
        address = parse_address(request.path_params["address"])
        found = await run(lambda: timeline(client, address, page_number(request)))
        name = await run(lambda: client.chain.identity(address))
        who = {"name": name.name if name else "", "address": request.path_params["address"]}
        return site.page(request, "timeline.html", timeline=found, patient=who)

    async def record(request: Request) -> Response:
        record_id = record_id_in(request)
        now = int(datetime.now(UTC).timestamp() * 1000)
        found = await run(lambda: record_page(client, record_id, now))
        query = request.query_params.get("q", "")
        matches = await run(lambda: directory(client, query)) if query else []
        wanted = request.query_params.get("rq", "")
        research = await run(lambda: research_shares(client, record_id, wanted, now))
        return site.page(
            request, "record.html", record=found, query=query, matches=matches, research=research
        )

    async def change_readers(request: Request) -> Response:
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        record_id = record_id_in(request)
        reader = parse_address(form.get("reader", ""))
        grant = request.url.path.endswith("/grant")
        await run(lambda: (client.grant if grant else client.revoke)(record_id, reader))
        return RedirectResponse(f"/records/{record_id.hex()}", status_code=303)

    async def observation(request: Request) -> Response:
        address = request.path_params["address"]
        patient_address = parse_address(address)
        if request.method == "GET":
            return site.page(request, "observation.html", address=address, signs=VITAL_SIGNS)
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        try:
            resource = observation_from_form(form, datetime.now(UTC))
            await run(
                lambda: client.put_record(
                    patient_address, resource, keywords=keywords_for(resource)
                )
            )
        except MedchainError as exc:
            return site.page(
                request, "observation.html", status=400, address=address, signs=VITAL_SIGNS,
                form=form, message=exc.message,
            )  # fmt: skip
        return RedirectResponse(f"/patients/{address}", status_code=303)

    return [
        Route("/", shows_errors(site, home)),
        Route("/patients/{address}", shows_errors(site, patient)),
        Route(
            "/patients/{address}/observation",
            shows_errors(site, observation),
            methods=["GET", "POST"],
        ),
        Route("/records/{record_id}", shows_errors(site, record)),
        Route("/records/{record_id}/grant", shows_errors(site, change_readers), methods=["POST"]),
        Route("/records/{record_id}/revoke", shows_errors(site, change_readers), methods=["POST"]),
    ]
