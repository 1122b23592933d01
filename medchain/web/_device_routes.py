"""A device's page and what the owner side changes there with plain forms: suspend,
resume, retire (after a confirmation page) and relabel. A change the chain commits
comes back as the page with a line saying so and the audit trail showing it; one it
refuses, as the page with the chain's reason. A guardian acting for the patient posts
the same forms (`for`); the chain decides what they may do."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.client import MedchainClient
from medchain.crypto import parse_address
from medchain.types import MedchainError
from medchain.web._device_actions import (
    CONFIRMED,
    DONE,
    RELABELLED,
    RETIRE,
    label_from_form,
    state_change_from_form,
)
from medchain.web._devices import device_trail
from medchain.web._pages import Site
from medchain.web._patient_routes import whose
from medchain.web._routing import refusal_status, shows_errors


def _change(client: MedchainClient, device: bytes, change: str, form: dict[str, str]) -> str:
    """Send the change a posted form asks for and wait for its commit; the `done` key
    of the line the page shows after it."""
    if change == "label":
        client.relabel_device(device, label_from_form(form))
        return RELABELLED
    action, reason = state_change_from_form(form)
    client.set_device_state(device, action.state, reason)
    return action.name


def device_routes(site: Site, client: MedchainClient) -> list[Route]:
    run = site.worker.run

    async def show(
        request: Request, for_text: str | None = None, status: int = 200, **context: Any
    ) -> Response:
        """The page of the path's device of the patient the request names."""
        patient, who = await whose(site, client, request, for_text)
        device = parse_address(request.path_params["device"])
        found = await run(lambda: device_trail(client, patient, device))
        template = context.pop("template", "device.html")
        return site.page(request, template, status, found=found, patient=who, **context)

    async def device(request: Request) -> Response:
        done = DONE.get(request.query_params.get("done", ""), "")
        return await show(request, flash=done)

    async def retire(request: Request) -> Response:
        return await show(request, template="retire.html", action=RETIRE, confirmed=CONFIRMED)

    async def change(request: Request) -> Response:
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        device = parse_address(request.path_params["device"])
        what = "label" if request.url.path.endswith("/label") else "state"
        try:
            done = await run(lambda: _change(client, device, what, form))
        except MedchainError as exc:
            status = refusal_status(exc)
            return await show(request, form.get("for"), status, failure=exc.message, form=form)
        query = {"done": done, **({"for": form["for"]} if form.get("for") else {})}
        path = request.url.path.rsplit("/", 1)[0]
        return RedirectResponse(f"{path}?{urlencode(query)}", status_code=303)

    return [
        Route("/devices/{device}", shows_errors(site, device)),
        Route("/devices/{device}/retire", shows_errors(site, retire)),
        Route("/devices/{device}/state", shows_errors(site, change), methods=["POST"]),
        Route("/devices/{device}/label", shows_errors(site, change), methods=["POST"]),
    ]
