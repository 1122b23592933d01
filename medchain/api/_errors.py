"""One error shape for every failure: `{"error": {"code", "message"}}`, with the
status a client can act on. Bad input is always a 4xx that says what to do; only a
bug in the node (or its damaged storage) gives a 500, and that is logged."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from medchain.app import KeyImageReused, NonceReused, RecordErased, TxTooLarge
from medchain.node import OverQuota, PendingFull, RateLimited, VerifierBusy
from medchain.offchain import (
    BlobCorrupted,
    BlobNotFound,
    BlobTooLarge,
    IpfsError,
    IpfsUnavailable,
)
from medchain.store import DiskFull
from medchain.types import MedchainError, TxFailed

log = logging.getLogger("medchain.api")

RETRY_AFTER_S = 1
"""What a client told the mempool is full should wait before trying again."""

FULL_CODES = frozenset({PendingFull.code, "mempool_full"})
"""Error codes meaning 'full, retry later' (the mempool's and the pending list's)."""


class ApiError(HTTPException):
    """An error the API raises on purpose: a status, a stable code and a message."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, dict(headers) if headers else None)
        self.code = code
        self.message = message


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status, headers=headers)


FORBIDDEN_CODES = frozenset(
    {
        "not_credentialed",
        "not_an_admin",
        "not_a_proxy",
        "not_owner",
        "not_authorised",
        "wrong_role",
    }
)
"""Codes of a contract refusal because the sender may not act so: 403."""
UNPROCESSABLE_CODES = frozenset({"invalid_argument"})
"""Codes of a contract refusal of the call's arguments: 422."""


def refusal_status(code: str) -> int:
    """The status of a call the contracts refuse at admission (its dry run): 403 when
    the sender may not act so, 422 for arguments no state would accept, 410 on an
    erased record, 409 for the rest (the state conflicts with it: already done,
    unknown, not yet possible)."""
    if code == RecordErased.code:
        return 410
    if code in FORBIDDEN_CODES:
        return 403
    if code in UNPROCESSABLE_CODES:
        return 422
    return 409


def status_for(exc: MedchainError) -> int:
    """The HTTP status of a domain error: a refused transaction is a 400 whatever it
    names (an unknown scope too), 409 when its nonce or key image is already used, 429
    when an uploader's quota of bodies not yet named is used up; a call its dry run
    shows the contracts would refuse, as `refusal_status` says."""
    if exc.code == RecordErased.code:
        return 410  # erased by its patient: gone for good, wherever it surfaces
    if isinstance(exc, BlobCorrupted):
        return 500  # the node's copy is damaged: not the client's fault
    if isinstance(exc, DiskFull):
        return 507  # the node stops on it: try another node, or later
    if isinstance(exc, PendingFull | VerifierBusy) or exc.code in FULL_CODES:
        return 503
    if isinstance(exc, RateLimited):
        return 429
    if isinstance(exc, IpfsUnavailable):
        return 503  # the node's IPFS backend is down: retry later
    if isinstance(exc, IpfsError):
        return 502  # it answered with something else than asked for
    if isinstance(exc, NonceReused | KeyImageReused):
        return 409
    if isinstance(exc, OverQuota):
        return 429  # the uploader's bodies must be named (committed) first
    if isinstance(exc, TxTooLarge | BlobTooLarge):
        return 413
    if isinstance(exc, BlobNotFound):
        return 404
    if isinstance(exc, TxFailed):
        return refusal_status(exc.code)
    return 400


def medchain_error_response(exc: MedchainError) -> JSONResponse:
    status = status_for(exc)
    if status == 500:
        log.error("%s: %s", exc.code, exc.message)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    if isinstance(exc, RateLimited):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return error_response(status, exc.code, exc.message, headers)


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


_UNREADABLE_BODY = "There was an error parsing the body"
"""FastAPI's detail when the JSON parser raised something else than a syntax error."""


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    if isinstance(exc, ApiError):
        return error_response(exc.status_code, exc.code, exc.message, exc.headers)
    if exc.status_code == 400 and exc.detail == _UNREADABLE_BODY:
        return error_response(
            400,
            "malformed_json",
            "the request body could not be read as JSON (invalid UTF-8, nesting too deep, or "
            "a number of more than 4,300 digits); send a JSON object as described at /docs",
        )
    code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
    message = str(exc.detail)
    if exc.status_code == 404:
        message = "no such endpoint; the API is described at /docs"
    elif exc.status_code == 405:
        message = f"{message}; the API is described at /docs"
    return error_response(exc.status_code, code, message, exc.headers)


def _describe(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


_RANGE_ERRORS = {
    "greater_than": "more than",
    "greater_than_equal": "at least",
    "less_than": "less than",
    "less_than_equal": "at most",
    "int_parsing_size": "",
}
"""pydantic's errors for a number outside its declared bounds (or with more digits
than Python parses), and how each bound reads."""


def _describe_ranges(errors: Sequence[Any]) -> str:
    parts = []
    for error in errors[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()))
        kind = error["type"]
        if kind == "int_parsing_size":
            parts.append(f"{where} has more digits than any value it takes; send a smaller one")
            continue
        context = error.get("ctx") or {}
        bound = next(iter(context.values()), "its bound")
        parts.append(
            f"{where} must be {_RANGE_ERRORS[kind]} {bound}, got {_shown(error.get('input'))}"
        )
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return "; ".join(parts) + more


def _shown(value: object) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(
            400, "malformed_json", "the request body is not valid JSON; send a JSON object"
        )
    if any(isinstance(error.get("input"), bytes) for error in errors):  # not sent as JSON
        return error_response(
            400,
            "malformed_json",
            "the request body must be a JSON object sent with Content-Type: application/json",
        )
    if all(error.get("type") in _RANGE_ERRORS for error in errors):
        return error_response(
            400, "out_of_range", _describe_ranges(errors) + "; the API is described at /docs"
        )
    return error_response(
        422, "invalid_request", _describe(errors) + "; the API is described at /docs"
    )


async def _medchain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MedchainError)
    return medchain_error_response(exc)


def internal_error() -> JSONResponse:
    """The body of a 500: a reference to find the logged traceback, no internals."""
    reference = secrets.token_hex(4)
    log.error("internal error %s", reference, exc_info=True)
    return error_response(
        500,
        "internal_error",
        f"the node failed to handle this request (a bug, logged as {reference}); "
        "retry, and report it if it persists",
    )


def install_route_error_handlers(app: FastAPI) -> None:
    """The node's error shape for the node's routes another app serves (the edge
    gateway's disclosure log): their ApiErrors and invalid parameters."""
    app.add_exception_handler(ApiError, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)


def install_error_handlers(app: FastAPI) -> None:
    """Handlers are coroutines: Starlette runs plain functions in a thread pool."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(MedchainError, _medchain_error)
