"""Adding a record to a patient's chart: the page that offers the forms, and each form
(a condition, an allergy, a medication, an uploaded FHIR resource) checked as FHIR
before the SDK seals it for the patient. A clinician adds to any patient's chart, a
patient to their own: the chain refuses anyone else."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from medchain.client import MedchainClient
from medchain.crypto import format_address, parse_address
from medchain.types import MedchainError
from medchain.web._clinician import keywords_for
from medchain.web._pages import MAX_FORM_BYTES, InvalidForm, Site
from medchain.web._record_forms import RECORD_FORMS, UPLOAD_FORM_BYTES, RecordForm
from medchain.web._routing import refusal_status, shows_errors


def _chosen(request: Request) -> RecordForm:
    chosen = RECORD_FORMS.get(request.path_params["kind"])
    if chosen is None:
        raise InvalidForm(f"there is no such form; choose one of: {', '.join(RECORD_FORMS)}")
    return chosen


def record_routes(site: Site, client: MedchainClient) -> list[Route]:
    run = site.worker.run

    async def choose(request: Request) -> Response:
        address = format_address(parse_address(request.path_params["address"]))
        return site.page(request, "add_record.html", address=address, forms=RECORD_FORMS)

    async def add(request: Request) -> Response:
        patient = parse_address(request.path_params["address"])
        address, chosen = format_address(patient), _chosen(request)
        if request.method == "GET":
            return site.page(request, "record_form.html", address=address, spec=chosen, form={})
        limit = UPLOAD_FORM_BYTES if chosen.multipart else MAX_FORM_BYTES
        form, refused = await site.posted(request, limit)
        if refused is not None:
            return refused
        try:
            resource = chosen.build(form, address, datetime.now(UTC).date())
            await run(lambda: client.put_record(patient, resource, keywords=keywords_for(resource)))
        except MedchainError as exc:
            return site.page(
                request, "record_form.html", status=refusal_status(exc), address=address,
                spec=chosen, form=form, message=exc.message,
            )  # fmt: skip
        return RedirectResponse(f"/patients/{address}", status_code=303)

    return [
        Route("/patients/{address}/records/new", shows_errors(site, choose)),
        Route(
            "/patients/{address}/records/new/{kind}",
            shows_errors(site, add),
            methods=["GET", "POST"],
        ),
    ]
