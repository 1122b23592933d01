"""The patient's own pages beside their records: vitals charts, their devices (a
device's own page is `_device_routes`'), guardians. A page is of the key holder, or
(`?for=` an address) of a patient they act for as proxy, or whose vitals they were
shared: the chain decides what they may see and do, the page shows what it answers."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.client import MedchainClient
from medchain.crypto import format_address, parse_address
from medchain.gateway import CheckedBundles
from medchain.web._devices import devices_page
from medchain.web._pages import Site
from medchain.web._records import name_of
from medchain.web._routing import shows_errors
from medchain.web._vitals import vitals, vitals_range


def now_ms() -> int:
    return int(datetime.now(UTC).timestamp() * 1000)


async def whose(
    site: Site, client: MedchainClient, request: Request, text: str | None = None
) -> tuple[bytes, dict[str, str]]:
    """The patient whose page this is (`text`, else the path's address or `?for=`, else
    the key holder), and how the page names them ("self" set on the holder's own,
    "acting" on a proxy's page of a patient)."""
    in_path = request.path_params.get("address")
    text = text or in_path or request.query_params.get("for")
    if not text or parse_address(text) == client.address:
        return client.address, {**site.me, "self": "yes"}
    address = parse_address(text)
    name = await site.worker.run(lambda: name_of(client, address))
    acting = "" if in_path else "yes"  # `for`: a proxy's pages of the patient
    return address, {"name": name, "address": format_address(address), "acting": acting}


def patient_page(
    site: Site,
    client: MedchainClient,
    template: str,
    read: Callable[[bytes], Any],
    **context: Any,
) -> Callable[[Request], Awaitable[Response]]:
    """A page of the patient the request names: `read(patient)` on the chain's thread,
    shown by `template` as `found`."""

    async def show(request: Request) -> Response:
        address, who = await whose(site, client, request)
        found = await site.worker.run(lambda: read(address))
        return site.page(request, template, found=found, patient=who, **context)

    return show


def patient_routes(site: Site, client: MedchainClient, checked: CheckedBundles) -> list[Route]:
    """`checked`: the app's memory of the vitals bundles it checked (a chart viewed again,
    or warmed up, is not checked again)."""
    run = site.worker.run

    async def vitals_page(request: Request) -> Response:
        address, who = await whose(site, client, request)
        span = vitals_range(request.query_params, now_ms())
        found = await run(lambda: vitals(client, address, span, checked))
        return site.page(request, "vitals.html", vitals=found, patient=who)

    devices = patient_page(site, client, "devices.html", lambda p: devices_page(client, p))

    async def guardians(request: Request) -> Response:
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        guardian = parse_address(form.get("guardian", ""))
        adding = request.url.path.endswith("/add")

        def change() -> None:
            (client.add_guardian if adding else client.remove_guardian)(guardian)
            client.reseal_device_labels()  # a guardian reads the labels, a former one not

        await run(change)
        return RedirectResponse("/devices", status_code=303)

    return [
        Route("/vitals", shows_errors(site, vitals_page)),
        Route("/patients/{address}/vitals", shows_errors(site, vitals_page)),
        Route("/devices", shows_errors(site, devices)),
        Route("/guardians/add", shows_errors(site, guardians), methods=["POST"]),
        Route("/guardians/remove", shows_errors(site, guardians), methods=["POST"]),
    ]
