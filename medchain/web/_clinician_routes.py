"""A clinician's pages beyond the foundation's: their patients (with the address search),
a search of their encrypted index, and a new version of a record with the same readers."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.app import REQUEST_ID_SIZE
from medchain.client import MedchainClient, open_emergency
from medchain.crypto import parse_address
from medchain.types import MedchainError
from medchain.web._break_glass import patient_emergency, request_state
from medchain.web._clinician import InvalidUpdate, my_patients, new_version, search_records
from medchain.web._pages import Site
from medchain.web._records import patients
from medchain.web._routing import hex_id_in, record_id_in, shows_errors


def _request_id(request: Request) -> bytes:
    return hex_id_in(request, "request_id", REQUEST_ID_SIZE, "a request id")


def clinician_routes(site: Site, client: MedchainClient) -> list[Route]:
    run = site.worker.run

    async def home(request: Request) -> Response:
        query = request.query_params.get("q", "")
        found = await run(lambda: patients(client, query))
        mine = await run(lambda: my_patients(client))
        return site.page(request, "patients.html", patients=found, query=query, mine=mine)

    async def search(request: Request) -> Response:
        words = request.query_params.get("q", "").strip()
        answer = await run(lambda: search_records(client, words)) if words else None
        return site.page(request, "search.html", query=words, answer=answer)

    async def update(request: Request) -> Response:
        record_id = record_id_in(request)
        current = await run(lambda: client.read_record(record_id))
        path = f"/records/{record_id.hex()}"
        if request.method == "GET":
            text = json.dumps(current, indent=2)
            return site.page(request, "update.html", record_path=path, text=text)
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        text = form.get("resource", "")
        try:
            resource = new_version(current, text)
            await run(lambda: client.add_version(record_id, resource))
        except MedchainError as exc:
            status = 400 if isinstance(exc, InvalidUpdate) else 409
            return site.page(
                request,
                "update.html",
                status=status,
                record_path=path,
                text=text,
                message=exc.message,
            )
        return RedirectResponse(path, status_code=303)

    async def emergency(request: Request) -> Response:
        address = request.path_params["address"]
        patient = parse_address(address)
        if request.method == "POST":
            form, refused = await site.posted(request)
            if refused is not None:
                return refused
            reason = form.get("reason", "").strip()
            if not reason:
                raise MedchainError("give the reason for emergency access; it is recorded")
            opened = await run(lambda: open_emergency(client, patient, reason))
            return RedirectResponse(f"/emergency/{opened.hex()}", status_code=303)
        state = await run(lambda: patient_emergency(client, patient))
        return site.page(request, "emergency.html", patient=address, emergency=state)

    async def emergency_request(request: Request) -> Response:
        request_id = _request_id(request)
        state = await run(lambda: request_state(client, request_id))
        return site.page(request, "emergency_request.html", opened=state)

    return [
        Route("/", shows_errors(site, home)),
        Route(
            "/patients/{address}/emergency",
            shows_errors(site, emergency),
            methods=["GET", "POST"],
        ),
        Route("/emergency/{request_id}", shows_errors(site, emergency_request)),
        Route("/search", shows_errors(site, search)),
        Route("/records/{record_id}/update", shows_errors(site, update), methods=["GET", "POST"]),
    ]
