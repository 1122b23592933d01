"""The gateway's disclosure log over HTTP, as a node serves its own: GET /v1/disclosures
(a patient's entries, to a read signed by the patient or their `read` proxy for the
chain the gateway commits to) and GET /v1/disclosures/hashes (every entry's salted
hash, public). The routes and models are the node's (`medchain.api.
disclosure_log_routes`); only where the log is and who may see it are the gateway's."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from medchain.api import ApiError, disclosure_log_routes
from medchain.app import NotRegistered, ReadNotAllowed
from medchain.crypto import InvalidAddress, parse_address
from medchain.gateway._read_requests import ReadRefused, verified_read
from medchain.node import DisclosureRecords
from medchain.types import MedchainError


async def _log(request: Request) -> DisclosureRecords:
    found: Any = request.app.state.gateway.service.disclosures
    if not isinstance(found, DisclosureRecords):
        raise ApiError(
            404,
            "no_disclosure_log",
            "this gateway keeps no disclosure log (it runs without a home); ask a gateway "
            "run with `medchain gateway --home`",
        )
    return found


async def _viewer(
    request: Request, patient: Annotated[str, Query(description="The patient's address.")]
) -> bytes:
    """The patient, once the signer may see their entries (an ApiError otherwise)."""
    gateway = request.app.state.gateway
    service = gateway.service
    try:
        raw = parse_address(patient)
    except InvalidAddress as exc:
        raise ApiError(400, exc.code, f"patient: {exc.message}") from None
    try:
        signed = verified_read(request, service.chain.chain_id)
        await gateway.call(service.access.check_disclosures, signed.public_key, raw, signed.now_ms)
    except ReadRefused as exc:
        raise ApiError(exc.status, exc.code, exc.message, exc.headers) from None
    except NotRegistered as exc:
        raise ApiError(404, exc.code, exc.message) from None
    except ReadNotAllowed as exc:
        raise ApiError(403, exc.code, exc.message) from None
    except MedchainError as exc:
        raise ApiError(
            503, "unavailable", f"the gateway cannot check who you are now: {exc.message}"
        ) from None
    return raw


def disclosure_routes() -> APIRouter:
    """The gateway's two disclosure routes, for its app."""
    return disclosure_log_routes(_log, _viewer)


__all__ = ["disclosure_routes"]
