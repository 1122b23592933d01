"""Giving and withdrawing a record's de-identified research copy from its page: plain
CSRF-checked forms naming the research organisation's account. The SDK makes and seals
the copy in this process; the chain decides who may (the owner or a `grant` proxy),
and its refusal is shown as a page (403 when it is not this account's to do)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.client import MedchainClient
from medchain.crypto import parse_address
from medchain.types import MedchainError
from medchain.web._pages import Site
from medchain.web._routing import record_id_in, shows_errors


def research_share_routes(site: Site, client: MedchainClient) -> list[Route]:
    async def change(request: Request) -> Response:
        form, refused = await site.posted(request)
        if refused is not None:
            return refused
        record_id = record_id_in(request)
        text = form.get("institution", "").strip()
        if not text:
            raise MedchainError("choose the research organisation (its mc1… address)")
        institution = parse_address(text)
        if request.url.path.endswith("/share"):
            await site.worker.run(lambda: client.research_grant(record_id, institution))
        else:
            await site.worker.run(lambda: client.research_revoke(record_id, institution))
        return RedirectResponse(f"/records/{record_id.hex()}", status_code=303)

    return [
        Route(
            f"/records/{{record_id}}/research/{action}",
            shows_errors(site, change),
            methods=["POST"],
        )
        for action in ("share", "revoke")
    ]
