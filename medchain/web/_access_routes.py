"""The patient's access pages: proxies (and the patients this account acts for), the
emergency policy and standing consents, changed by plain forms; the notices and the
accounting of disclosures. A proxy reaches a patient's pages with `?for=` (a form
carries it as a hidden field); the chain refuses what its scopes do not allow."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.client import (
    MedchainClient,
    add_proxy,
    opt_out_of_emergency,
    remove_proxy,
    set_up_emergency_policy,
)
from medchain.crypto import parse_address
from medchain.types import MedchainError
from medchain.web._access import (
    CONSENT_PURPOSES,
    SCOPES,
    access_page,
    consent_from_form,
    proxy_from_form,
)
from medchain.web._feed import disclosure_rows, notice_rows
from medchain.web._pages import Site
from medchain.web._patient_routes import now_ms, patient_page, whose
from medchain.web._routing import shows_errors


def _back(path: str, patient: bytes, client: MedchainClient, text: str) -> RedirectResponse:
    """After a change, the page it was made on (of the same patient)."""
    query = "" if patient == client.address else "?" + urlencode({"for": text})
    return RedirectResponse(path + query, status_code=303)


def access_routes(site: Site, client: MedchainClient) -> list[Route]:
    run = site.worker.run

    access = patient_page(
        site, client, "access.html", lambda p: access_page(client, p, now_ms()),
        purposes=CONSENT_PURPOSES, scopes=SCOPES,
    )  # fmt: skip
    notices_page = patient_page(
        site, client, "notices.html", lambda p: notice_rows(client, p)
    )  # fmt: skip

    async def change(request: Request) -> Response:
        """A posted change to the access of the patient the form names (`for`)."""
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        address, _ = await whose(site, client, request, form.get("for"))
        action = request.path_params["action"]
        if action == "grant-consent":
            reader, types, purposes = consent_from_form(form)
            await run(
                lambda: client.grant_consent(reader, types, purposes=purposes, patient=address)
            )
        elif action == "revoke-consent":
            consent_id = form.get("consent", "")
            if not consent_id.isdigit():
                raise MedchainError("that is not a consent number")
            await run(lambda: client.revoke_consent(int(consent_id)))
        elif action in ("emergency-on", "emergency-off"):
            on = action == "emergency-on"
            setting = set_up_emergency_policy if on else opt_out_of_emergency
            await run(lambda: setting(client, patient=address))
        elif action == "add-proxy":
            proxy, relation, scopes = proxy_from_form(form)
            await run(lambda: add_proxy(client, proxy, relation, scopes))
        elif action == "remove-proxy":
            proxy = parse_address(form.get("proxy", ""))
            await run(lambda: remove_proxy(client, proxy))
        else:
            return site.error(request, f"no such change: {action[:40]}", status=404)
        return _back("/access", address, client, form.get("for", ""))

    async def disclosures_page(request: Request) -> Response:
        address, who = await whose(site, client, request)
        reports = await run(lambda: client.disclosures(patient=address))
        found = await run(lambda: disclosure_rows(client, reports))
        return site.page(request, "disclosures.html", disclosures=found, patient=who)

    return [
        Route("/access", shows_errors(site, access)),
        Route("/access/{action}", shows_errors(site, change), methods=["POST"]),
        Route("/notices", shows_errors(site, notices_page)),
        Route("/disclosures", shows_errors(site, disclosures_page)),
    ]
